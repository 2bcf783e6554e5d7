//! Filters in request bodies — the one place that decides what a `filter` field is.
//!
//! A filter is [`hybridb::Filter`] in its JSON form (Qdrant's: `{"must": [{"key": "lang",
//! "match": {"value": "en"}}], "should": [...], "must_not": [...]}`). A malformed one is
//! refused while the body is decoded (400 `invalid_filter`, the message naming the part, e.g.
//! `filter: must[0].range: ...`); one that does not fit the collection's payload indexes is
//! refused by the library with the same code.

/// The type of the `filter` field of request bodies.
pub type Filter = hybridb::Filter;

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
