//! Partial payload updates: what [`crate::Collection::update_payload`] does to each entity's
//! payload, as a pure function of the stored payload ([`PayloadUpdate::apply`]).
//!
//! Keys in `Set { key }` and `Delete` are paths of object keys joined by `.` (`"meta.author"`);
//! an empty segment (`"a..b"`, `".a"`) is refused with [`EntityProblem::BadPayloadKey`] before
//! anything is written. Invariant: `apply` never touches anything outside the paths it names,
//! so an update that names no stored key leaves the payload as it was.

use serde_json::{Map, Value};

use crate::model::error::EntityProblem;

/// How a partial payload update changes the payload of each entity it reaches. Vectors are
/// never touched, so an update costs no index work beyond the payload indexes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PayloadUpdate {
    /// Merges `payload`'s keys into the payload (a key present in both takes the new value;
    /// other keys stay). With `key`, merges into the object at that path instead, creating the
    /// objects along the path where they are missing and replacing a non-object value found on
    /// it (Qdrant's `set_payload` with `key`).
    Set {
        /// The keys and values to set.
        payload: Map<String, Value>,
        /// Path of the object to merge into (`None`: the payload itself).
        key: Option<String>,
    },
    /// Replaces the whole payload.
    Overwrite(Map<String, Value>),
    /// Removes these keys (each a path); a path that is not there is skipped.
    Delete(Vec<String>),
    /// Removes every key, leaving `{}`.
    Clear,
}

impl PayloadUpdate {
    /// Merges `payload` into the payload's top level.
    pub fn set(payload: Map<String, Value>) -> Self {
        PayloadUpdate::Set { payload, key: None }
    }

    /// Merges `payload` into the object at `key` (a `.`-joined path).
    pub fn set_at(key: impl Into<String>, payload: Map<String, Value>) -> Self {
        PayloadUpdate::Set {
            payload,
            key: Some(key.into()),
        }
    }

    /// Checks the update's own form (its paths); the result of applying it is checked against
    /// the collection's limits and payload indexes when it is applied.
    pub(crate) fn check(&self) -> Result<(), EntityProblem> {
        match self {
            PayloadUpdate::Set { key: Some(k), .. } => split_path(k).map(|_| ()),
            PayloadUpdate::Delete(keys) => {
                if keys.is_empty() {
                    return Err(EntityProblem::BadPayloadKey {
                        key: String::new(),
                        reason: "no keys to delete",
                    });
                }
                keys.iter().try_for_each(|k| split_path(k).map(|_| ()))
            }
            _ => Ok(()),
        }
    }

    /// The payload after this update. Call [`PayloadUpdate::check`] first: paths are assumed
    /// well formed here (a malformed one changes nothing).
    pub(crate) fn apply(&self, mut payload: Map<String, Value>) -> Map<String, Value> {
        match self {
            PayloadUpdate::Set { payload: add, key } => {
                match key.as_deref().map(split_path) {
                    None => merge_at(&mut payload, &[], add),
                    Some(Ok(path)) => merge_at(&mut payload, &path, add),
                    Some(Err(_)) => {}
                }
                payload
            }
            PayloadUpdate::Overwrite(new) => new.clone(),
            PayloadUpdate::Delete(keys) => {
                for key in keys {
                    if let Ok(path) = split_path(key) {
                        remove_at(&mut payload, &path);
                    }
                }
                payload
            }
            PayloadUpdate::Clear => Map::new(),
        }
    }
}

/// The segments of a `.`-joined path; none may be empty.
fn split_path(key: &str) -> Result<Vec<&str>, EntityProblem> {
    let parts: Vec<&str> = key.split('.').collect();
    if key.is_empty() || parts.iter().any(|p| p.is_empty()) {
        return Err(EntityProblem::BadPayloadKey {
            key: key.to_string(),
            reason: "a payload key path is object keys joined by '.', none of them empty",
        });
    }
    Ok(parts)
}

/// Merges `add` into the object at `path`, made where missing (a non-object on the way is
/// replaced).
fn merge_at(map: &mut Map<String, Value>, path: &[&str], add: &Map<String, Value>) {
    let Some((first, rest)) = path.split_first() else {
        for (k, v) in add {
            map.insert(k.clone(), v.clone());
        }
        return;
    };
    let slot = map
        .entry((*first).to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Value::Object(inner) = slot {
        merge_at(inner, rest, add);
    }
}

/// Removes the value at `path` if every object on the way is there.
fn remove_at(map: &mut Map<String, Value>, path: &[&str]) {
    match path {
        [] => {}
        [last] => {
            map.remove(*last);
        }
        [first, rest @ ..] => {
            if let Some(Value::Object(inner)) = map.get_mut(*first) {
                remove_at(inner, rest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn each_update_does_what_it_says() {
        let p = obj(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": "x"}));
        assert_eq!(
            PayloadUpdate::set(obj(json!({"a": 9, "f": true}))).apply(p.clone()),
            obj(json!({"a": 9, "b": {"c": 2, "d": 3}, "e": "x", "f": true}))
        );
        assert_eq!(
            PayloadUpdate::set_at("b", obj(json!({"c": 7}))).apply(p.clone()),
            obj(json!({"a": 1, "b": {"c": 7, "d": 3}, "e": "x"}))
        );
        assert_eq!(
            PayloadUpdate::set_at("e.g", obj(json!({"h": 1}))).apply(p.clone()),
            obj(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": {"g": {"h": 1}}}))
        );
        assert_eq!(
            PayloadUpdate::Overwrite(obj(json!({"z": 0}))).apply(p.clone()),
            obj(json!({"z": 0}))
        );
        assert_eq!(
            PayloadUpdate::Delete(vec!["a".into(), "b.c".into(), "nope.x".into()]).apply(p.clone()),
            obj(json!({"b": {"d": 3}, "e": "x"}))
        );
        assert_eq!(PayloadUpdate::Clear.apply(p), Map::new());
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in ["", ".a", "a.", "a..b"] {
            let e = PayloadUpdate::Delete(vec![bad.into()]).check();
            assert!(
                matches!(e, Err(EntityProblem::BadPayloadKey { .. })),
                "{bad:?}"
            );
            let e = PayloadUpdate::set_at(bad, Map::new()).check();
            assert!(
                matches!(e, Err(EntityProblem::BadPayloadKey { .. })),
                "{bad:?}"
            );
        }
        assert!(PayloadUpdate::Delete(vec![]).check().is_err());
        assert!(PayloadUpdate::Delete(vec!["a.b".into()]).check().is_ok());
        assert!(PayloadUpdate::Clear.check().is_ok());
    }
}
