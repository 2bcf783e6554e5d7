//! Partial payload updates: what [`crate::Collection::update_payload`] does to each entity's
//! payload, as a pure function of the stored payload ([`PayloadUpdate::apply`]).
//!
//! Keys in `Set { key }` and `Delete` are paths of object keys joined by `.` (`"meta.author"`),
//! each optionally followed by array steps, `[n]` or `[]` (`"a[0].b"`; [`crate::model::path`]);
//! an empty segment (`"a..b"`, `".a"`) or a malformed step is refused with [`EntityProblem::BadPayloadKey`] before
//! anything is written. Invariant: `apply` never touches anything outside the paths it names,
//! so an update that names no stored key leaves the payload as it was.

use serde_json::{Map, Value};

use crate::model::error::EntityProblem;
use crate::model::path::{Step, parse_path};

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

/// The steps of a path (`a.b`, `a[0].b`, `a[].b`; see [`crate::model::path`]).
fn split_path(key: &str) -> Result<Vec<Step<'_>>, EntityProblem> {
    parse_path(key).map_err(|_| EntityProblem::BadPayloadKey {
        key: key.to_string(),
        reason: "a payload key path is object keys joined by '.', none of them empty, each \
                 optionally followed by `[n]` (one array element) or `[]` (every element)",
    })
}

/// Merges `add` into the value(s) at `path` (Qdrant's `set_payload` with `key`): a key step
/// makes an object where there is none (replacing a non-object), `[n]` walks into that element
/// when it exists (a non-array becomes `[]`), `[]` into every element.
fn merge_at(map: &mut Map<String, Value>, path: &[Step<'_>], add: &Map<String, Value>) {
    match path.split_first() {
        None => {
            for (k, v) in add {
                map.insert(k.clone(), v.clone());
            }
        }
        Some((Step::Key(k), rest)) => {
            let slot = map.entry((*k).to_string()).or_insert(Value::Null);
            merge_into(slot, rest, add);
        }
        // A parsed path starts with a key.
        Some(_) => {}
    }
}

fn merge_into(dest: &mut Value, path: &[Step<'_>], add: &Map<String, Value>) {
    match path.first() {
        None | Some(Step::Key(_)) => {
            if !dest.is_object() {
                *dest = Value::Object(Map::new());
            }
            if let Value::Object(m) = dest {
                merge_at(m, path, add);
            }
        }
        Some(Step::Index(i)) => match dest {
            Value::Array(items) => {
                if let Some(v) = items.get_mut(*i) {
                    merge_into(v, &path[1..], add);
                }
            }
            _ => *dest = Value::Array(Vec::new()),
        },
        Some(Step::Every) => match dest {
            Value::Array(items) => {
                for v in items {
                    merge_into(v, &path[1..], add);
                }
            }
            _ => *dest = Value::Array(Vec::new()),
        },
    }
}

/// Removes the value(s) at `path` where every step on the way is there; a path ending in
/// `[n]` removes nothing (removing an element would shift the others), one ending in `[]`
/// empties the array.
fn remove_at(map: &mut Map<String, Value>, path: &[Step<'_>]) {
    match path {
        [Step::Key(last)] => {
            map.remove(*last);
        }
        [Step::Key(first), rest @ ..] => {
            if let Some(v) = map.get_mut(*first) {
                remove_in(v, rest);
            }
        }
        _ => {}
    }
}

fn remove_in(v: &mut Value, path: &[Step<'_>]) {
    match (path, v) {
        ([Step::Key(_), ..], Value::Object(m)) => remove_at(m, path),
        ([Step::Every], Value::Array(items)) => items.clear(),
        ([Step::Index(i), rest @ ..], Value::Array(items)) if !rest.is_empty() => {
            if let Some(v) = items.get_mut(*i) {
                remove_in(v, rest);
            }
        }
        ([Step::Every, rest @ ..], Value::Array(items)) => {
            for v in items {
                remove_in(v, rest);
            }
        }
        _ => {}
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
    fn array_steps_set_and_delete_like_qdrant() {
        let p = obj(json!({"k": {"arr": [{"a1": {"x": 1}}, {"a2": {"y": 2}}], "s": 3}}));
        // `[0]`: only the first element.
        assert_eq!(
            PayloadUpdate::set_at("k.arr[0].a1", obj(json!({"x": 9}))).apply(p.clone()),
            obj(json!({"k": {"arr": [{"a1": {"x": 9}}, {"a2": {"y": 2}}], "s": 3}}))
        );
        // `[]`: every element (the path's objects are made where missing).
        assert_eq!(
            PayloadUpdate::set_at("k.arr[].a2", obj(json!({"z": 0}))).apply(p.clone()),
            obj(
                json!({"k": {"arr": [{"a1": {"x": 1}, "a2": {"z": 0}}, {"a2": {"y": 2, "z": 0}}], "s": 3}})
            )
        );
        // An index past the end, or into a non-array, sets nothing there.
        assert_eq!(
            PayloadUpdate::set_at("k.arr[5].a", obj(json!({"x": 9}))).apply(p.clone()),
            p
        );
        assert_eq!(
            PayloadUpdate::set_at("k.s[0]", obj(json!({"x": 9}))).apply(p.clone()),
            obj(json!({"k": {"arr": [{"a1": {"x": 1}}, {"a2": {"y": 2}}], "s": []}}))
        );
        assert_eq!(
            PayloadUpdate::Delete(vec!["k.arr[1].a2".into(), "k.arr[0]".into()]).apply(p.clone()),
            obj(json!({"k": {"arr": [{"a1": {"x": 1}}, {}], "s": 3}}))
        );
        assert_eq!(
            PayloadUpdate::Delete(vec!["k.arr[]".into()]).apply(p),
            obj(json!({"k": {"arr": [], "s": 3}}))
        );
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in ["", ".a", "a.", "a..b", "a[x]", "a[0"] {
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
