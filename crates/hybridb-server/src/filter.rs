//! Filters in request bodies — the one place that decides what a `filter` field is.
//!
//! A filter is [`hybridb::Filter`] in its JSON form (Qdrant's: `{"must": [{"key": "lang",
//! "match": {"value": "en"}}], "should": [...], "must_not": [...]}`). A malformed one is
//! refused while the body is decoded (400 `invalid_filter`, the message naming the part, e.g.
//! `filter: must[0].range: ...`); one that does not fit the collection's payload indexes is
//! refused by the library with the same code.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// The type of the `filter` field of request bodies.
pub type Filter = hybridb::Filter;

/// The OpenAPI schema of a `filter` field (named `Filter`): a JSON object in the filter form of
/// the module docs. The conditions are checked by the server, not by the schema.
#[derive(Debug, Clone, Copy)]
pub struct FilterSchema;

impl utoipa::PartialSchema for FilterSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "A filter over payload fields, in Qdrant's form: `{\"must\": [...], \"should\": \
                 [...], \"must_not\": [...]}` of conditions such as `{\"key\": \"lang\", \"match\": \
                 {\"value\": \"en\"}}`, `{\"key\": \"tag\", \"match\": {\"any\": [\"a\", \"b\"]}}`, \
                 `{\"key\": \"year\", \"range\": {\"gte\": 2020}}`, `{\"is_empty\": {\"key\": \"k\"}}`, \
                 `{\"is_null\": {\"key\": \"k\"}}`, `{\"has_id\": [\"<uuid>\"]}` and nested filters; keys \
                 are dotted paths into the payload. A malformed filter is answered with 400 \
                 `invalid_filter` naming the part.",
            ))
            .examples([serde_json::json!({
                "must": [{"key": "lang", "match": {"value": "de"}}],
                "must_not": [{"key": "year", "range": {"lt": 2020}}]
            })])
            .into()
    }
}

impl utoipa::ToSchema for FilterSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Filter")
    }
}

/// True if a serde path (`searches[2].filter.must[0]`) lies inside a `filter` field.
pub(crate) fn in_filter(path: &str) -> bool {
    path.split('.')
        .any(|seg| seg == "filter" || seg.starts_with("filter["))
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_inside_filters() {
        assert!(super::in_filter("filter"));
        assert!(super::in_filter("searches[2].filter"));
        assert!(!super::in_filter("filters"));
        assert!(!super::in_filter("entities[0].vector"));
    }
}
