//! Reading Qdrant's union-typed request fields (vectors, queries, filters, payload selectors)
//! and writing hybridb's records and hits in Qdrant's form.
//!
//! Everything this layer does not implement yet (multi-vectors, server-side inference, the
//! `formula` and `relevance_feedback` query kinds) is refused with 400 and a message saying so,
//! naming the field, so a client never gets an answer to a different question. Vectors are
//! read and written in [`super::vectors`].

use hybridb::{Collection, Database, EntityId, Hit, Metric, Record};
use serde_json::{Map, Value};

use super::ids::PointId;
use super::model::{PointRecord, ScoredPoint};
use super::vectors::VectorSelect;
use crate::error::{ApiError, ErrorCode};

/// 400 for a feature of Qdrant's API that this layer does not have yet.
pub(crate) fn unsupported(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::BadRequest,
        format!("{what} is not supported yet by hybridb's Qdrant-compatible API"),
    )
}

/// 400 for a malformed request field.
pub(crate) fn bad(at: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::InvalidBody, format!("{at}: {why}"))
}

/// The collection (or alias) `name`, with Qdrant's wording when it does not exist.
pub(crate) fn collection(db: &Database, name: &str) -> Result<Collection, ApiError> {
    db.collection(name).map_err(|e| match e {
        hybridb::Error::CollectionNotFound(_) => not_found(name),
        other => other.into(),
    })
}

/// 404 in Qdrant's words for a missing collection.
pub(crate) fn not_found(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::CollectionNotFound,
        format!("Collection `{name}` doesn't exist!"),
    )
}

/// 404 in Qdrant's words for a missing point.
pub(crate) fn point_not_found(id: PointId) -> ApiError {
    ApiError::new(
        ErrorCode::EntityNotFound,
        format!("No point with id {id} found"),
    )
}

/// Maps a library error, naming a missing point in Qdrant's words.
pub(crate) fn library_error(e: hybridb::Error) -> ApiError {
    match e {
        hybridb::Error::InvalidEntity {
            id,
            problem: hybridb::EntityProblem::NotFound,
            ..
        } => point_not_found(PointId::of(id)),
        hybridb::Error::InvalidEntity { index, id, problem } => ApiError::new(
            ErrorCode::InvalidEntity,
            format!("points[{index}] (id {}): {problem}", PointId::of(id)),
        ),
        other => other.into(),
    }
}

/// Cosine collections store unit vectors, as Qdrant does: a retrieved vector is normalised.
pub(crate) fn prepare(mut v: Vec<f32>, metric: Metric) -> Vec<f32> {
    if metric == Metric::Cosine {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 && norm.is_finite() {
            v.iter_mut().for_each(|x| *x /= norm);
        }
    }
    v
}

/// The ids of a request as entity ids.
pub(crate) fn entity_ids(ids: &[PointId]) -> Result<Vec<EntityId>, ApiError> {
    ids.iter().map(|id| id.to_entity()).collect()
}

/// Qdrant's `has_id` lists hold point ids: each becomes the entity id it maps to. Null members
/// (what some clients send for unset fields) are dropped.
fn translate_filter(v: &mut Value) -> Result<(), ApiError> {
    if let Some(rewritten) = field_flag(v) {
        *v = rewritten;
    }
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            if let Some(Value::Array(ids)) = m.get_mut("has_id") {
                for id in ids.iter_mut() {
                    let point: PointId = serde_json::from_value(id.clone()).map_err(|e| {
                        ApiError::new(ErrorCode::InvalidFilter, format!("filter: has_id: {e}"))
                    })?;
                    *id = Value::String(point.to_entity()?.to_string());
                }
            }
            for (k, x) in m.iter_mut() {
                if k != "has_id" {
                    translate_filter(x)?;
                }
            }
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(translate_filter),
        _ => Ok(()),
    }
}

/// Qdrant's field-condition form of `is_empty` / `is_null`, `{"key": k, "is_empty": true}`,
/// in the condition form the library reads (`{"is_empty": {"key": k}}`; `false`: its
/// negation).
fn field_flag(v: &Value) -> Option<Value> {
    let Value::Object(m) = v else {
        return None;
    };
    let key = m.get("key")?;
    let (op, flag) = ["is_empty", "is_null"]
        .into_iter()
        .find_map(|op| m.get(op).and_then(Value::as_bool).map(|b| (op, b)))?;
    if m.iter().any(|(k, x)| k != "key" && k != op && !x.is_null()) {
        return None;
    }
    let condition = serde_json::json!({ op: {"key": key} });
    Some(if flag {
        condition
    } else {
        serde_json::json!({"must_not": [condition]})
    })
}

/// The library filter of a Qdrant filter (none for an absent or null one).
pub(crate) fn filter(v: Option<Value>) -> Result<Option<hybridb::Filter>, ApiError> {
    let Some(mut v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    translate_filter(&mut v)?;
    hybridb::Filter::from_json(&v).map(Some).map_err(|e| {
        // Qdrant's own validation answers 422 for a condition without a test and for bad
        // geo coordinates or polygons.
        let code = match e {
            hybridb::FilterProblem::NoFieldCondition { .. }
            | hybridb::FilterProblem::InvalidGeo { .. } => ErrorCode::ValidationFailed,
            _ => ErrorCode::InvalidFilter,
        };
        ApiError::new(code, e.to_string())
    })
}

/// Which payload keys an answer carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Selector {
    /// The whole payload.
    All,
    /// No payload (`null`).
    Nothing,
    /// Only these paths.
    Include(Vec<String>),
    /// All but these paths.
    Exclude(Vec<String>),
}

fn strings(v: &Value, at: &str) -> Result<Vec<String>, ApiError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .ok_or_else(|| bad(at, "expected a list of keys"))
            })
            .collect(),
        _ => Err(bad(at, "expected a list of keys")),
    }
}

impl Selector {
    /// Reads `with_payload`: a bool, a list of keys, `{"include": ...}` or `{"exclude": ...}`.
    pub(crate) fn read(v: Option<&Value>, default: bool) -> Result<Selector, ApiError> {
        let at = "with_payload";
        Ok(match v {
            None | Some(Value::Null) => {
                if default {
                    Selector::All
                } else {
                    Selector::Nothing
                }
            }
            Some(Value::Bool(true)) => Selector::All,
            Some(Value::Bool(false)) => Selector::Nothing,
            Some(list @ Value::Array(_)) => Selector::Include(strings(list, at)?),
            Some(Value::Object(m)) => match (m.get("include"), m.get("exclude")) {
                (Some(i), None) => Selector::Include(strings(i, at)?),
                (None, Some(e)) => Selector::Exclude(strings(e, at)?),
                _ => {
                    return Err(bad(
                        at,
                        "expected {\"include\": [...]} or {\"exclude\": [...]}",
                    ));
                }
            },
            Some(_) => return Err(bad(at, "expected a bool, a list of keys or an object")),
        })
    }

    /// The payload an answer carries.
    pub(crate) fn apply(&self, payload: Map<String, Value>) -> Option<Map<String, Value>> {
        match self {
            Selector::All => Some(payload),
            Selector::Nothing => None,
            Selector::Include(paths) => {
                let mut out = Map::new();
                for path in paths {
                    copy_path(&payload, &mut out, path);
                }
                Some(out)
            }
            Selector::Exclude(paths) => {
                let mut payload = payload;
                for path in paths {
                    remove_path(&mut payload, path);
                }
                Some(payload)
            }
        }
    }

    /// True if the payload is needed at all.
    pub(crate) fn wants_payload(&self) -> bool {
        *self != Selector::Nothing
    }
}

/// One step of a payload selector path: a key, and whether `[]` follows it (the rest of the
/// path then applies to every element of the array there).
fn step(path: &str) -> (&str, bool, Option<&str>) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    match head.strip_suffix("[]") {
        Some(key) => (key, true, rest),
        None => (head, false, rest),
    }
}

/// Copies what `path` selects of `from` into `to`, keeping its place: objects on the way are
/// rebuilt with the selected keys only, and `key[]` selects within every element of an array.
fn copy_path(from: &Map<String, Value>, to: &mut Map<String, Value>, path: &str) {
    let (key, each, rest) = step(path);
    let Some(v) = from.get(key) else { return };
    let Some(rest) = rest else {
        to.insert(key.to_string(), v.clone());
        return;
    };
    match (v, each) {
        (Value::Object(inner), false) => {
            let entry = to
                .entry(key.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(target) = entry {
                copy_path(inner, target, rest);
            }
        }
        (Value::Array(items), true) => {
            let entry = to
                .entry(key.to_string())
                .or_insert_with(|| Value::Array(vec![Value::Object(Map::new()); items.len()]));
            if let Value::Array(targets) = entry {
                for (item, target) in items.iter().zip(targets.iter_mut()) {
                    if let (Value::Object(item), Value::Object(target)) = (item, target) {
                        copy_path(item, target, rest);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Removes what `path` selects from `from` (`key[]`: from every element of the array).
fn remove_path(from: &mut Map<String, Value>, path: &str) {
    let (key, each, rest) = step(path);
    let Some(rest) = rest else {
        from.remove(key);
        return;
    };
    match (from.get_mut(key), each) {
        (Some(Value::Object(inner)), false) => remove_path(inner, rest),
        (Some(Value::Array(items)), true) => {
            for item in items {
                if let Value::Object(item) = item {
                    remove_path(item, rest);
                }
            }
        }
        _ => {}
    }
}

/// A stored record in Qdrant's form.
pub(crate) fn record(r: Record, payload: &Selector, vectors: &VectorSelect) -> PointRecord {
    PointRecord {
        id: PointId::of(r.id),
        payload: payload.apply(r.payload),
        vector: vectors.output(r.vector, r.vectors),
        order_value: None,
    }
}

/// A search hit in Qdrant's form (the library's scores already follow Qdrant's conventions:
/// similarity for cosine, dot and sparse vectors, the distance itself for L2 and Manhattan).
pub(crate) fn scored(h: Hit, payload: &Selector, vectors: &VectorSelect) -> ScoredPoint {
    ScoredPoint {
        id: PointId::of(h.id),
        version: 0,
        score: h.score,
        payload: h.payload.and_then(|p| payload.apply(p)),
        vector: vectors.output(h.vector.unwrap_or_default(), h.vectors.unwrap_or_default()),
        order_value: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_reach_into_objects_and_array_elements() {
        let payload = json!({"country": {"name": "DE", "capital": "Berlin", "cities": [
            {"name": "Berlin", "pop": 3}, {"name": "Munich", "pop": 1}]}, "x": 1});
        let payload = payload.as_object().unwrap().clone();
        let sel = |v: Value| {
            Selector::read(Some(&v), true)
                .unwrap()
                .apply(payload.clone())
        };
        assert_eq!(
            sel(json!({"include": ["country.cities[].name", "x"]})),
            json!({"country": {"cities": [{"name": "Berlin"}, {"name": "Munich"}]}, "x": 1})
                .as_object()
                .cloned()
        );
        assert_eq!(
            sel(json!({"include": ["country.name"]})),
            json!({"country": {"name": "DE"}}).as_object().cloned()
        );
        assert_eq!(
            sel(json!({"exclude": ["country.cities[].pop", "country.capital", "x"]})),
            json!({"country": {"name": "DE", "cities": [{"name": "Berlin"}, {"name": "Munich"}]}})
                .as_object()
                .cloned()
        );
    }

    #[test]
    fn filters_map_point_ids_and_drop_nulls() {
        let f = filter(Some(
            json!({"must": [{"has_id": [7, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26"]}],
            "should": null, "min_should": null}),
        ))
        .unwrap()
        .unwrap();
        let seven = PointId::Num(7).to_entity().unwrap();
        assert!(f.matches(seven, &Map::new()));
        assert!(!f.matches(PointId::Num(8).to_entity().unwrap(), &Map::new()));
        assert_eq!(
            filter(Some(json!({"must": [{"has_id": [-1]}]})))
                .unwrap_err()
                .code,
            ErrorCode::InvalidFilter
        );
        assert!(filter(Some(Value::Null)).unwrap().is_none());
        // Qdrant's field-condition flags.
        let f = filter(Some(json!({"must": [{"key": "a", "is_empty": true}]})))
            .unwrap()
            .unwrap();
        assert!(f.matches(seven, &Map::new()));
        let f = filter(Some(json!({"must": [{"key": "a", "is_null": false}]})))
            .unwrap()
            .unwrap();
        assert!(f.matches(seven, &Map::new()));
        assert!(!f.matches(seven, json!({"a": null}).as_object().unwrap()));
    }

    #[test]
    fn payload_selectors() {
        let p = json!({"a": 1, "b": {"c": 2, "d": 3}})
            .as_object()
            .unwrap()
            .clone();
        let sel = Selector::read(Some(&json!(["a", "b.c"])), true).unwrap();
        assert_eq!(
            Value::Object(sel.apply(p.clone()).unwrap()),
            json!({"a": 1, "b": {"c": 2}})
        );
        let sel = Selector::read(Some(&json!({"exclude": ["b.d"]})), true).unwrap();
        assert_eq!(
            Value::Object(sel.apply(p.clone()).unwrap()),
            json!({"a": 1, "b": {"c": 2}})
        );
        assert_eq!(Selector::read(None, false).unwrap().apply(p), None);
        assert!(Selector::read(Some(&json!(3)), true).is_err());
    }
}
