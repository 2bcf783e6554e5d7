//! The layers every request passes, outermost first:
//! 1. [`observe`]: counts the request for `/metrics`, turns a panic into 500 `internal` and
//!    axum's bare 405s into JSON errors;
//! 2. [`authenticate`]: API keys (see [`crate::ApiKeys`]);
//! 3. [`limit`]: a slot among `max_concurrent_requests`, and the time limit.
//!
//! The body-size limit is axum's `DefaultBodyLimit`, enforced when a handler reads the body.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use subtle::ConstantTimeEq;

use crate::config::ApiKeys;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// The route template of a request (`/collections/{name}`), or `unmatched`.
fn route_of(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string())
}

/// Outermost layer: metrics, panics, bare 405s.
pub(crate) async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = route_of(&req);
    let method = req.method().clone();
    let started = Instant::now();
    let response = match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(r) => r,
        Err(_) => ApiError::internal("the request handler panicked").into_response(),
    };
    let response = if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("{method} is not allowed on {route}"),
        )
        .into_response()
    } else {
        response
    };
    state.metrics.record(
        &route,
        method.as_str(),
        response.status(),
        started.elapsed(),
    );
    response
}

/// What a route needs from the caller's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// No key needed.
    Open,
    /// A read-only or read-write key.
    Read,
    /// A read-write key.
    Write,
}

/// The access a request needs, from its method and route template. Reading routes are the
/// GETs and the POSTs that only read (search, count, scroll, get-many); everything else
/// writes or administers.
pub(crate) fn required_access(method: &Method, route: &str) -> Access {
    const READING_POSTS: [&str; 9] = [
        "/collections/{name}/search",
        "/collections/{name}/search/batch",
        "/collections/{name}/search/explain",
        "/collections/{name}/query",
        "/collections/{name}/query/batch",
        "/collections/{name}/query/explain",
        "/collections/{name}/count",
        "/collections/{name}/scroll",
        "/collections/{name}/entities/get",
    ];
    let qdrant_route = route
        .strip_prefix(crate::qdrant::PREFIX)
        .filter(|r| r.is_empty() || r.starts_with('/'))
        .unwrap_or(route);
    if route == "/healthz" || route == "/readyz" {
        Access::Open
    } else if method == Method::GET
        || method == Method::HEAD
        || (method == Method::POST && READING_POSTS.contains(&route))
        || (method == Method::POST && crate::qdrant::READING_POSTS.contains(&qdrant_route))
    {
        Access::Read
    } else {
        Access::Write
    }
}

/// Compares `given` with every configured key in constant time per key (no early exit on
/// the first mismatching byte, and every key is compared); returns the best access granted.
pub(crate) fn access_of(keys: &ApiKeys, given: &[u8]) -> Option<Access> {
    let matches = |list: &[String]| {
        list.iter().fold(0u8, |found, k| {
            found | u8::from(bool::from(k.as_bytes().ct_eq(given)))
        }) == 1
    };
    let write = matches(&keys.read_write);
    let read = matches(&keys.read_only);
    if write {
        Some(Access::Write)
    } else if read {
        Some(Access::Read)
    } else {
        None
    }
}

/// API-key check (only when keys are configured).
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let keys = &state.config.api_keys;
    if !keys.enabled() {
        return Ok(next.run(req).await);
    }
    let needed = required_access(req.method(), &route_of(&req));
    if needed == Access::Open {
        return Ok(next.run(req).await);
    }
    // `Authorization: Bearer KEY`, or Qdrant's `api-key: KEY`.
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .or_else(|| req.headers().get("api-key").map(|v| v.as_bytes()))
        .map(<[u8]>::trim_ascii);
    let Some(token) = token else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "this server needs an API key: send `Authorization: Bearer KEY` (or `api-key: KEY`)",
        ));
    };
    match access_of(keys, token) {
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "the API key is not valid",
        )),
        Some(Access::Read) if needed == Access::Write => Err(ApiError::new(
            ErrorCode::Forbidden,
            "a read-only API key cannot use this route",
        )),
        Some(_) => Ok(next.run(req).await),
    }
}

/// Concurrency slot and time limit.
pub(crate) async fn limit(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let route = route_of(&req);
    let limit = if route == "/backup" || route == "/verify" {
        state.config.admin_timeout
    } else {
        state.config.request_timeout
    };
    let work = async {
        let _permit = state
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::internal("the server is shutting down"))?;
        Ok::<_, ApiError>(next.run(req).await)
    };
    match tokio::time::timeout(limit, work).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::new(
            ErrorCode::Timeout,
            format!(
                "the request did not finish within {} ms (a write that was already queued \
                 still commits)",
                limit.as_millis()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_by_route() {
        use Access::*;
        let cases = [
            (Method::GET, "/healthz", Open),
            (Method::GET, "/readyz", Open),
            (Method::GET, "/collections", Read),
            (Method::GET, "/metrics", Read),
            (Method::POST, "/collections/{name}/search", Read),
            (Method::POST, "/collections/{name}/entities/get", Read),
            (Method::POST, "/collections/{name}/search/explain", Read),
            (Method::POST, "/collections/{name}/query", Read),
            (Method::POST, "/collections/{name}/query/explain", Read),
            (
                Method::PUT,
                "/collections/{name}/text-indexes/{field}",
                Write,
            ),
            (
                Method::PUT,
                "/collections/{name}/payload-indexes/{field}",
                Write,
            ),
            (Method::PUT, "/collections/{name}", Write),
            (Method::DELETE, "/collections/{name}", Write),
            (Method::POST, "/collections/{name}/entities/delete", Write),
            (Method::POST, "/backup", Write),
            (Method::POST, "/verify", Write),
            (Method::POST, "unmatched", Write),
            (Method::GET, "/qdrant", Read),
            (
                Method::POST,
                "/qdrant/collections/{collection_name}/points/query",
                Read,
            ),
            (
                Method::POST,
                "/collections/{collection_name}/points/scroll",
                Read,
            ),
            (
                Method::POST,
                "/collections/{collection_name}/points/payload",
                Write,
            ),
            (Method::PUT, "/collections/{collection_name}/points", Write),
            (
                Method::POST,
                "/qdrant/collections/{collection_name}/points/delete",
                Write,
            ),
            (
                Method::POST,
                "/qdrantx/collections/{collection_name}/points/query",
                Write,
            ),
        ];
        for (m, r, want) in cases {
            assert_eq!(required_access(&m, r), want, "{m} {r}");
        }
    }

    #[test]
    fn keys() {
        let keys = ApiKeys {
            read_write: vec!["rw-key".into()],
            read_only: vec!["ro-key".into(), "ro2".into()],
        };
        assert_eq!(access_of(&keys, b"rw-key"), Some(Access::Write));
        assert_eq!(access_of(&keys, b"ro2"), Some(Access::Read));
        assert_eq!(access_of(&keys, b"rw-ke"), None);
        assert_eq!(access_of(&keys, b""), None);
    }
}
