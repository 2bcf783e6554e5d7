//! The one error type of the HTTP API and its JSON form.
//!
//! Every failure answers `{"error":{"code":"...","message":"..."}}` with a stable snake_case
//! `code` (clients branch on it; it never changes meaning) and a human `message` that names the
//! bad field or item. [`ApiError::from`] maps every [`hybridb::Error`] variant to a code and an
//! HTTP status: user errors are 4xx, transient service faults 503 (with `Retry-After`), other
//! faults 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer: an HTTP status, a stable code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code (see `docs/server.md` for the list).
    pub code: &'static str,
    /// Human-readable description naming the bad field or item.
    pub message: String,
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error inside [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `collection_not_found`.
    pub code: String,
    /// Human-readable description.
    pub message: String,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with the given code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// Prefixes the message with a location, e.g. `searches[2]`.
    pub fn at(mut self, location: &str) -> Self {
        self.message = format!("{location}: {}", self.message);
        self
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = (status, crate::reply::Json(self.body())).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<hybridb::Error> for ApiError {
    fn from(e: hybridb::Error) -> Self {
        use hybridb::Error as E;
        let message = e.to_string();
        let (status, code) = match &e {
            E::AlreadyOpen { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "already_open"),
            E::IncompatibleFormat { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "incompatible_format")
            }
            E::InvalidCollectionName { .. } => (StatusCode::BAD_REQUEST, "invalid_collection_name"),
            E::InvalidConfig(_) => (StatusCode::BAD_REQUEST, "invalid_config"),
            E::CollectionNotFound(_) => (StatusCode::NOT_FOUND, "collection_not_found"),
            E::CollectionExists(_) => (StatusCode::CONFLICT, "collection_exists"),
            E::InvalidEntity { .. } => (StatusCode::BAD_REQUEST, "invalid_entity"),
            E::Conflict { .. } => (StatusCode::CONFLICT, "version_conflict"),
            E::InvalidQuery(hybridb::QueryProblem::Filter(_)) => {
                (StatusCode::BAD_REQUEST, "invalid_filter")
            }
            E::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            E::InvalidId { .. } => (StatusCode::BAD_REQUEST, "invalid_id"),
            E::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            E::CommitFailed { .. } => (StatusCode::SERVICE_UNAVAILABLE, "commit_failed"),
            E::WriterUnavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "writer_unavailable"),
            E::Recovering => (StatusCode::SERVICE_UNAVAILABLE, "recovering"),
            E::ChangesPruned { .. } => (StatusCode::GONE, "changes_pruned"),
            E::InvalidCursor { .. } => (StatusCode::BAD_REQUEST, "invalid_cursor"),
            E::Corrupted(_) => (StatusCode::INTERNAL_SERVER_ERROR, "corrupted"),
            E::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage_error"),
            E::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "io_error"),
            E::AliasNotFound(_) => (StatusCode::NOT_FOUND, "alias_not_found"),
            E::AliasExists(_) => (StatusCode::CONFLICT, "alias_exists"),
            E::NameIsCollection(_) => (StatusCode::CONFLICT, "name_is_collection"),
            E::NameIsAlias(_) => (StatusCode::CONFLICT, "name_is_alias"),
            E::CollectionHasAliases { .. } => (StatusCode::CONFLICT, "collection_has_aliases"),
            E::CollectionInUse { .. } => (StatusCode::CONFLICT, "collection_in_use"),
            E::CollectionReadOnly(_) => (StatusCode::SERVICE_UNAVAILABLE, "collection_read_only"),
            // Variants added to the library later: classified by its own predicates.
            other if other.is_transient() => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            other if other.is_user_error() => (StatusCode::BAD_REQUEST, "bad_request"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, message)
    }
}

/// Maps a write error, naming the bad item by its place in the request's `field` array
/// (e.g. `entities[3] (id ...): vector has dimension 2, collection expects 3`).
pub(crate) fn write_error(e: hybridb::Error, field: &str) -> ApiError {
    match e {
        hybridb::Error::InvalidEntity { index, id, problem } => ApiError::bad_request(
            "invalid_entity",
            format!("{field}[{index}] (id {id}): {problem}"),
        ),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_map_to_stable_codes() {
        let cases = [
            (
                hybridb::Error::CollectionNotFound("x".into()),
                404,
                "collection_not_found",
            ),
            (
                hybridb::Error::CollectionExists("x".into()),
                409,
                "collection_exists",
            ),
            (hybridb::Error::Busy { waited_ms: 5 }, 503, "busy"),
            (hybridb::Error::Recovering, 503, "recovering"),
            (
                hybridb::Error::ChangesPruned {
                    requested_after: 1,
                    first_available: 5,
                },
                410,
                "changes_pruned",
            ),
            (hybridb::Error::Corrupted("x".into()), 500, "corrupted"),
            (
                hybridb::Error::InvalidConfig("dim".into()),
                400,
                "invalid_config",
            ),
        ];
        for (e, status, code) in cases {
            let api = ApiError::from(e);
            assert_eq!(api.status.as_u16(), status, "{api}");
            assert_eq!(api.code, code);
        }
    }

    #[test]
    fn transient_errors_carry_retry_after() {
        let r = ApiError::from(hybridb::Error::Recovering).into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
