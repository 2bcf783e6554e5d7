//! Qdrant's answer envelopes.
//!
//! Success: `{"result": ..., "status": "ok", "time": seconds}`. Failure:
//! `{"status": {"error": "..."}, "time": seconds, "result": null}` with Qdrant's status codes.
//! Handlers and the shared layers fail with the server's own [`ApiError`]; [`translate`], the
//! outermost layer in front of the Qdrant routes, rewrites every native error body into
//! Qdrant's form (the status stays: each [`ErrorCode`] keeps its status), so no error of the
//! shared layers (API keys, limits, timeouts, body decoding) can escape in the native form.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorCode};
use crate::reply::Json;

/// A successful Qdrant answer: the result, `"status": "ok"` and the seconds it took.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reply<T> {
    /// The operation's result.
    pub result: T,
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Seconds spent on the request.
    pub time: f64,
}

/// Wraps `result` in the success envelope, timed from `started`.
pub(crate) fn ok<T>(result: T, started: Instant) -> Json<Reply<T>> {
    Json(Reply {
        result,
        status: "ok",
        time: started.elapsed().as_secs_f64(),
    })
}

/// The error part of [`QdrantError`].
#[derive(Debug, Serialize, ToSchema)]
pub struct QdrantErrorStatus {
    /// What went wrong, e.g. ``Not found: Collection `docs` doesn't exist!``.
    pub error: String,
}

/// A failed Qdrant answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct QdrantError {
    /// The error.
    pub status: QdrantErrorStatus,
    /// Seconds spent on the request.
    pub time: f64,
    /// Always null.
    #[schema(value_type = Option<Object>)]
    pub result: Option<()>,
}

/// Qdrant's wording of an error: its kind (`Not found`, `Wrong input`, ...) and the message.
pub(crate) fn qdrant_message(code: ErrorCode, message: &str) -> String {
    if code == ErrorCode::ValidationFailed {
        return format!("Validation error in JSON body: [{message}]");
    }
    let kind = match code.status() {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::CONFLICT => "Wrong input",
        StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
        s if s.is_server_error() => "Service internal error",
        _ => "Bad request",
    };
    format!("{kind}: {message}")
}

/// The Qdrant form of an error answer.
pub(crate) fn error_response(e: &ApiError, started: Instant) -> Response {
    let body = QdrantError {
        status: QdrantErrorStatus {
            error: qdrant_message(e.code, &e.message),
        },
        time: started.elapsed().as_secs_f64(),
        result: None,
    };
    let mut response = (e.status(), Json(body)).into_response();
    if e.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Where [`translate`] acts: on every request (the Qdrant port) or only under a path prefix
/// (the main port, which serves the Qdrant routes under `/qdrant`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope(pub Option<&'static str>);

/// Outermost layer of the Qdrant routes: native error bodies become Qdrant's.
pub(crate) async fn translate(State(scope): State<Scope>, req: Request, next: Next) -> Response {
    let applies = match scope.0 {
        None => true,
        Some(prefix) => {
            let path = req.uri().path();
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        }
    };
    let started = Instant::now();
    let response = next.run(req).await;
    if !applies || response.status().is_success() {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let native: Option<(ErrorCode, String)> = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            let code = v["error"]["code"].as_str()?.parse().ok()?;
            Some((code, v["error"]["message"].as_str()?.to_string()))
        });
    match native {
        Some((code, message)) => {
            let mut response = error_response(&ApiError::new(code, message), started);
            // Keep the status the layer chose (e.g. 401 with its header).
            *response.status_mut() = parts.status;
            if let Some(v) = parts.headers.get(header::WWW_AUTHENTICATE) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, v.clone());
            }
            response
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}
