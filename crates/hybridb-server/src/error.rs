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
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// Declares [`ErrorCode`]: each code with its wire name, HTTP status and meaning, from which
/// the code's serde form, its status and its OpenAPI schema are all derived.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $name:literal, $status:ident;)+) => {
        /// The stable code of an error answer. Each code always comes with the same HTTP
        /// status ([`ErrorCode::status`]); clients branch on the code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order (by status).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The code as sent: snake_case, e.g. `collection_not_found`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }

            /// The HTTP status every answer with this code has.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)+
                }
            }

            /// When the code is sent (its doc comment).
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => concat!($($doc),+).trim_ascii(),)+
                }
            }
        }
    };
}

error_codes! {
    /// The body is not JSON.
    InvalidJson = "invalid_json", BAD_REQUEST;
    /// A wrong type, missing or unknown field in the body (the message gives its path), or
    /// a request over a count limit.
    InvalidBody = "invalid_body", BAD_REQUEST;
    /// The body nests objects and arrays deeper than the limit (64).
    JsonTooDeep = "json_too_deep", BAD_REQUEST;
    /// A bad path parameter.
    InvalidPath = "invalid_path", BAD_REQUEST;
    /// A bad query-string parameter.
    InvalidQueryParam = "invalid_query_param", BAD_REQUEST;
    /// An entity id that is not a UUID.
    InvalidId = "invalid_id", BAD_REQUEST;
    /// A collection or alias name that is not 1..=64 bytes of `[A-Za-z0-9_-]`, or starts
    /// with `-`.
    InvalidCollectionName = "invalid_collection_name", BAD_REQUEST;
    /// Dimension or index parameters out of range, or a payload index that does not fit
    /// the stored values.
    InvalidConfig = "invalid_config", BAD_REQUEST;
    /// A bad entity in a write: wrong dimension, non-finite component, zero vector under
    /// cosine, payload not an object or too large or of another type than its payload
    /// index, `id` and `key` both given, a duplicate id in a batch, a missing default
    /// vector, a named vector the collection does not declare or of the other kind, a
    /// malformed sparse vector (lengths differ, indices not strictly increasing).
    InvalidEntity = "invalid_entity", BAD_REQUEST;
    /// `k` or `limit` 0 or above the maximum, `ef` out of range, a bad query vector, a
    /// non-finite `score_threshold`, not exactly one of `vector`, `sparse` and `like`, a
    /// `using` the collection does not declare or of the other kind than the query, a `like`
    /// entity without that vector.
    InvalidQuery = "invalid_query", BAD_REQUEST;
    /// A malformed filter, or a condition that does not fit the field's payload index.
    InvalidFilter = "invalid_filter", BAD_REQUEST;
    /// A bad change-feed cursor.
    InvalidCursor = "invalid_cursor", BAD_REQUEST;
    /// The server has no backup folder.
    BackupDisabled = "backup_disabled", BAD_REQUEST;
    /// A backup path that is absolute or holds `..`.
    InvalidBackupPath = "invalid_backup_path", BAD_REQUEST;
    /// Another mistake of the request, reported by a newer library.
    BadRequest = "bad_request", BAD_REQUEST;
    /// API keys are configured and the request has no valid one.
    Unauthorized = "unauthorized", UNAUTHORIZED;
    /// A read-only key on a route that writes.
    Forbidden = "forbidden", FORBIDDEN;
    /// No such collection (or alias).
    CollectionNotFound = "collection_not_found", NOT_FOUND;
    /// No such entity.
    EntityNotFound = "entity_not_found", NOT_FOUND;
    /// No such alias.
    AliasNotFound = "alias_not_found", NOT_FOUND;
    /// The collection declares no named vector of that name.
    VectorNotFound = "vector_not_found", NOT_FOUND;
    /// No such route.
    NotFound = "not_found", NOT_FOUND;
    /// The route does not take this method.
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED;
    /// A collection of that name exists.
    CollectionExists = "collection_exists", CONFLICT;
    /// An alias of that name exists.
    AliasExists = "alias_exists", CONFLICT;
    /// The collection declares a named vector of that name differently (remove it first).
    VectorExists = "vector_exists", CONFLICT;
    /// A collection named like an alias, or `DELETE /collections/{alias}`.
    NameIsAlias = "name_is_alias", CONFLICT;
    /// An alias named like a collection.
    NameIsCollection = "name_is_collection", CONFLICT;
    /// Dropping a collection that aliases point to.
    CollectionHasAliases = "collection_has_aliases", CONFLICT;
    /// Dropping a collection that holds prepared two-phase-commit writes.
    CollectionInUse = "collection_in_use", CONFLICT;
    /// A conditional write (`if_version`) found another version.
    VersionConflict = "version_conflict", CONFLICT;
    /// The backup file exists (backups never overwrite).
    BackupExists = "backup_exists", CONFLICT;
    /// Change events after `since` were removed by retention.
    ChangesPruned = "changes_pruned", GONE;
    /// The body is over the size limit.
    BodyTooLarge = "body_too_large", PAYLOAD_TOO_LARGE;
    /// Only on the Qdrant-compatible routes: input that Qdrant's request validation refuses
    /// (a vector size out of range, an empty update), answered with Qdrant's status.
    ValidationFailed = "validation_failed", UNPROCESSABLE_ENTITY;
    /// A body without `Content-Type: application/json`.
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE;
    /// A fault of the server (e.g. a panicking handler); nothing about the request.
    Internal = "internal", INTERNAL_SERVER_ERROR;
    /// The database file holds inconsistent data.
    Corrupted = "corrupted", INTERNAL_SERVER_ERROR;
    /// The storage engine failed.
    StorageError = "storage_error", INTERNAL_SERVER_ERROR;
    /// An I/O error.
    IoError = "io_error", INTERNAL_SERVER_ERROR;
    /// The database file is open elsewhere.
    AlreadyOpen = "already_open", INTERNAL_SERVER_ERROR;
    /// The database file has a format this build cannot read.
    IncompatibleFormat = "incompatible_format", INTERNAL_SERVER_ERROR;
    /// The write queue stayed full: retry later.
    Busy = "busy", SERVICE_UNAVAILABLE;
    /// The index is being rebuilt: retry later.
    Recovering = "recovering", SERVICE_UNAVAILABLE;
    /// A commit failed and the writer is reopening the database: retry later.
    CommitFailed = "commit_failed", SERVICE_UNAVAILABLE;
    /// The writer is not running: retry later.
    WriterUnavailable = "writer_unavailable", SERVICE_UNAVAILABLE;
    /// The request did not finish in time (a write already queued still commits).
    Timeout = "timeout", SERVICE_UNAVAILABLE;
    /// The server is shutting down.
    ShuttingDown = "shutting_down", SERVICE_UNAVAILABLE;
    /// The collection behind an alias is being swapped by a re-embed: retry later.
    CollectionReadOnly = "collection_read_only", SERVICE_UNAVAILABLE;
    /// Another transient fault, reported by a newer library: retry later.
    Unavailable = "unavailable", SERVICE_UNAVAILABLE;
    /// Another `metrics` recorder was installed first: `/metrics` cannot render.
    MetricsUnavailable = "metrics_unavailable", SERVICE_UNAVAILABLE;
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown error code {s:?}"))
    }
}

/// A string enum of every code; its description tabulates each code's status and meaning.
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        let mut description = String::from(
            "Stable error code; each code always comes with the same HTTP status.\n\n\
             | code | status | when |\n|---|---|---|\n",
        );
        for code in ErrorCode::ALL {
            description.push_str(&format!(
                "| `{}` | {} | {} |\n",
                code.as_str(),
                code.status().as_u16(),
                code.meaning().replace('\n', " ")
            ));
        }
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
            .description(Some(description))
            .into()
    }
}

impl ToSchema for ErrorCode {}

/// An error answer: a stable code (which fixes the HTTP status) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Stable code (see `docs/server.md` for the list).
    pub code: ErrorCode,
    /// Human-readable description naming the bad field or item.
    pub message: String,
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "collection_not_found",
    "message": "collection \"docs\" not found"}}))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error inside [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `collection_not_found`.
    pub code: ErrorCode,
    /// Human-readable description; names the bad field or item.
    pub message: String,
}

impl ApiError {
    /// An error with the given code (and so its status) and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// The HTTP status (the code's).
    pub fn status(&self) -> StatusCode {
        self.code.status()
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
                code: self.code,
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
            self.status().as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
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
        use ErrorCode as C;
        use hybridb::Error as E;
        let message = match &e {
            E::InvalidQuery(hybridb::QueryProblem::UnknownVector(name)) if name.is_empty() => {
                "the collection has no default vector (it was created with dim 0): name the \
                 vector to search with `using`"
                    .to_string()
            }
            _ => e.to_string(),
        };
        let code = match &e {
            E::AlreadyOpen { .. } => C::AlreadyOpen,
            E::IncompatibleFormat { .. } => C::IncompatibleFormat,
            E::InvalidCollectionName { .. } => C::InvalidCollectionName,
            E::InvalidConfig(_) => C::InvalidConfig,
            E::CollectionNotFound(_) => C::CollectionNotFound,
            E::CollectionExists(_) => C::CollectionExists,
            E::InvalidEntity { .. } => C::InvalidEntity,
            E::InvalidUpdate(_) => C::InvalidBody,
            E::Conflict { .. } => C::VersionConflict,
            E::InvalidQuery(hybridb::QueryProblem::Filter(_)) => C::InvalidFilter,
            E::InvalidQuery(_) => C::InvalidQuery,
            E::InvalidId { .. } => C::InvalidId,
            E::Busy { .. } => C::Busy,
            E::CommitFailed { .. } => C::CommitFailed,
            E::WriterUnavailable { .. } => C::WriterUnavailable,
            E::Recovering => C::Recovering,
            E::ChangesPruned { .. } => C::ChangesPruned,
            E::InvalidCursor { .. } => C::InvalidCursor,
            E::Corrupted(_) => C::Corrupted,
            E::Storage(_) => C::StorageError,
            E::Io(_) => C::IoError,
            E::AliasNotFound(_) => C::AliasNotFound,
            E::AliasExists(_) => C::AliasExists,
            E::NameIsCollection(_) => C::NameIsCollection,
            E::NameIsAlias(_) => C::NameIsAlias,
            E::CollectionHasAliases { .. } => C::CollectionHasAliases,
            E::CollectionInUse { .. } => C::CollectionInUse,
            E::CollectionReadOnly(_) => C::CollectionReadOnly,
            // Variants added to the library later: classified by its own predicates.
            other if other.is_transient() => C::Unavailable,
            other if other.is_user_error() => C::BadRequest,
            _ => C::Internal,
        };
        ApiError::new(code, message)
    }
}

/// Maps a write error, naming the bad item by its place in the request's `field` array
/// (e.g. `entities[3] (id ...): vector has dimension 2, collection expects 3`).
pub(crate) fn write_error(e: hybridb::Error, field: &str) -> ApiError {
    match e {
        hybridb::Error::InvalidEntity { index, id, problem } => ApiError::new(
            ErrorCode::InvalidEntity,
            format!("{field}[{index}] (id {id}): {}", problem_text(&problem)),
        ),
        other => other.into(),
    }
}

/// An entity problem in words; a default vector given to a collection without one (the
/// library's unknown vector `""`) is said as such.
pub(crate) fn problem_text(problem: &hybridb::EntityProblem) -> String {
    match problem {
        hybridb::EntityProblem::UnknownVector { name } if name.is_empty() => {
            "`vector` given, but the collection has no default vector (it was created with \
             dim 0): give its named `vectors` only"
                .to_string()
        }
        other => other.to_string(),
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
            assert_eq!(api.status().as_u16(), status, "{api}");
            assert_eq!(api.code.as_str(), code);
        }
    }

    #[test]
    fn transient_errors_carry_retry_after() {
        let r = ApiError::from(hybridb::Error::Recovering).into_response();
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}

#[cfg(test)]
mod code_tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for &code in ErrorCode::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert_eq!(name.parse::<ErrorCode>(), Ok(code));
            assert_eq!(serde_json::to_value(code).unwrap(), name);
            assert!(code.status().is_client_error() || code.status().is_server_error());
            assert!(!code.meaning().is_empty() && !code.meaning().contains("///"));
        }
        assert!("nope".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn the_schema_is_a_string_enum_of_every_code() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(ErrorCode::schema()).unwrap();
        assert_eq!(schema["type"], "string");
        let values: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(values, all);
        let description = schema["description"].as_str().unwrap();
        assert!(
            description.contains("| `version_conflict` | 409 |"),
            "{description}"
        );
    }
}
