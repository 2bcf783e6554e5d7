//! Filters in request bodies — the one place that decides what a `filter` field does.
//!
//! The library has no filters yet, so [`Filter`] is raw JSON and `check` refuses any filter
//! with 400 `filter_unsupported`. When `hybridb::Filter` lands, change the alias to it (its
//! serde form is Qdrant's JSON) and make `check` pass it on; the request types and the
//! OpenAPI document follow from the alias.

use crate::error::ApiError;

/// The type of the `filter` field of request bodies.
pub type Filter = serde_json::Value;

/// Accepts the absence of a filter; refuses any filter for now (see the module docs).
/// `field` names where the filter was found, e.g. `filter` or `searches[2].filter`.
pub(crate) fn check(field: &str, filter: Option<&Filter>) -> Result<(), ApiError> {
    match filter {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(_) => Err(ApiError::bad_request(
            "filter_unsupported",
            format!("{field}: filters are not supported by this version of hybridb yet"),
        )),
    }
}
