//! Qdrant's collection tuning knobs, kept and reported back.
//!
//! hybridb maps what it can at creation (`hnsw_config.m`/`ef_construct` onto its HNSW
//! parameters, `quantization_config` onto its codes; `collections.rs`); everything else a
//! client sets — `on_disk`, per-vector `hnsw_config` and `quantization_config`,
//! `optimizers_config`, `wal_config`, `on_disk_payload` and the other `params`, a sparse
//! vector's `index`, and every knob of `PATCH /collections/{c}` — has no effect on hybridb's
//! engine, but Qdrant's clients read their settings back from `GET /collections/{c}`. So the
//! layer keeps them, as given, in the collection's metadata under one reserved key
//! ([`KNOBS_KEY`], committed with the config in the create's or the update's transaction),
//! and lays them over the engine's own values when it answers, as Qdrant reports them. The
//! reserved key is hidden from the metadata this layer reports, and a client may not set it.
//!
//! Merging follows Qdrant's update: `hnsw_config`, `optimizers_config`, `params` and a
//! sparse vector's `index` are diffs merged key by key (`null` leaves a key as it was);
//! `quantization_config` and `on_disk` replace the previous value (`"Disabled"` removes it).

use serde_json::{Map, Value, json};

use super::convert::bad;
use crate::error::ApiError;

/// The metadata key under which the layer keeps the knobs (never a key of the user's).
pub(crate) const KNOBS_KEY: &str = "qdrant:knobs";

/// The user's metadata, with the reserved key refused.
pub(crate) fn user_metadata(v: &Option<Value>) -> Result<Option<Map<String, Value>>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) if m.contains_key(KNOBS_KEY) => Err(bad(
            &format!("metadata.{KNOBS_KEY}"),
            "this key is reserved for the settings hybridb's Qdrant layer keeps",
        )),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(bad("metadata", "expected an object")),
    }
}

/// The metadata to report: the user's, without the reserved key.
pub(crate) fn reported_metadata(m: &Map<String, Value>) -> Map<String, Value> {
    let mut m = m.clone();
    m.remove(KNOBS_KEY);
    m
}

/// Merges the non-null keys of `diff` into the object `base[key]` (made when missing).
fn merge(base: &mut Map<String, Value>, key: &str, diff: Option<&Value>) {
    let Some(Value::Object(d)) = diff else {
        return;
    };
    let slot = base
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Value::Object(s) = slot {
        for (k, v) in d {
            if !v.is_null() {
                s.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Sets `base[key]` to `v` (`null` or absent: unchanged; `"Disabled"`: removed).
fn replace(base: &mut Map<String, Value>, key: &str, v: Option<&Value>) {
    match v {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "Disabled" => {
            base.remove(key);
        }
        Some(v) => {
            base.insert(key.to_string(), v.clone());
        }
    }
}

/// The per-vector knobs of a vector's parameters (`on_disk`, `hnsw_config`,
/// `quantization_config`), merged into `into`.
fn vector_knobs(into: &mut Map<String, Value>, params: &Value) {
    replace(into, "on_disk", params.get("on_disk"));
    merge(into, "hnsw_config", params.get("hnsw_config"));
    replace(
        into,
        "quantization_config",
        params.get("quantization_config"),
    );
}

/// The knobs of a create body (the body's JSON; `vectors` one unnamed vector's params, or a
/// map of name to params).
pub(crate) fn at_create(body: &Value) -> Map<String, Value> {
    let mut k = Map::new();
    let mut vectors = Map::new();
    match body.get("vectors") {
        Some(Value::Object(top)) if top.contains_key("size") => {
            let mut one = Map::new();
            vector_knobs(&mut one, &Value::Object(top.clone()));
            vectors.insert(String::new(), Value::Object(one));
        }
        Some(Value::Object(top)) => {
            for (name, params) in top {
                let mut one = Map::new();
                vector_knobs(&mut one, params);
                vectors.insert(name.clone(), Value::Object(one));
            }
        }
        _ => {}
    }
    vectors.retain(|_, v| v.as_object().is_some_and(|m| !m.is_empty()));
    if !vectors.is_empty() {
        k.insert("vectors".into(), Value::Object(vectors));
    }
    if let Some(Value::Object(sparse)) = body.get("sparse_vectors") {
        let mut out = Map::new();
        for (name, params) in sparse {
            let mut one = Map::new();
            merge(&mut one, "index", params.get("index"));
            if !one.is_empty() {
                out.insert(name.clone(), Value::Object(one));
            }
        }
        if !out.is_empty() {
            k.insert("sparse_vectors".into(), Value::Object(out));
        }
    }
    merge(&mut k, "hnsw_config", body.get("hnsw_config"));
    merge(&mut k, "optimizers_config", body.get("optimizers_config"));
    merge(&mut k, "wal_config", body.get("wal_config"));
    replace(
        &mut k,
        "quantization_config",
        body.get("quantization_config"),
    );
    let mut params = Map::new();
    for key in [
        "on_disk_payload",
        "shard_number",
        "replication_factor",
        "write_consistency_factor",
    ] {
        replace(&mut params, key, body.get(key));
    }
    if !params.is_empty() {
        k.insert("params".into(), Value::Object(params));
    }
    k.retain(|_, v| v.as_object().is_none_or(|m| !m.is_empty()));
    k
}

/// The knobs after a `PATCH` (its body's JSON) over `old`. `vectors` names were checked by
/// the caller (every one exists).
pub(crate) fn patched(old: Option<&Value>, body: &Value) -> Map<String, Value> {
    let mut k = old.and_then(Value::as_object).cloned().unwrap_or_default();
    if let Some(Value::Object(vs)) = body.get("vectors") {
        let mut vectors = match k.remove("vectors") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for (name, params) in vs {
            let mut one = match vectors.remove(name) {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            vector_knobs(&mut one, params);
            vectors.insert(name.clone(), Value::Object(one));
        }
        k.insert("vectors".into(), Value::Object(vectors));
    }
    if let Some(Value::Object(sp)) = body.get("sparse_vectors") {
        let mut sparse = match k.remove("sparse_vectors") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for (name, params) in sp {
            let mut one = match sparse.remove(name) {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            merge(&mut one, "index", params.get("index"));
            sparse.insert(name.clone(), Value::Object(one));
        }
        k.insert("sparse_vectors".into(), Value::Object(sparse));
    }
    merge(&mut k, "hnsw_config", body.get("hnsw_config"));
    merge(&mut k, "optimizers_config", body.get("optimizers_config"));
    merge(&mut k, "params", body.get("params"));
    replace(
        &mut k,
        "quantization_config",
        body.get("quantization_config"),
    );
    k.retain(|_, v| v.as_object().is_none_or(|m| !m.is_empty()));
    k
}

/// Lays the knobs over `value[key]` (an object; each non-null key of the knob set).
fn overlay(value: &mut Value, key: &str, knobs: Option<&Value>) {
    let Some(Value::Object(kn)) = knobs else {
        return;
    };
    if !value[key].is_object() {
        value[key] = json!({});
    }
    if let Value::Object(m) = &mut value[key] {
        for (k, v) in kn {
            m.insert(k.clone(), v.clone());
        }
    }
}

/// Lays the stored knobs over a collection info's `config` (`params.vectors` as
/// [`super::vectors::Layout::params`] gives it: one unnamed vector's params, or a map).
pub(crate) fn report(config: &mut Value, metadata: &Map<String, Value>) {
    let Some(Value::Object(k)) = metadata.get(KNOBS_KEY) else {
        return;
    };
    if let Some(Value::Object(vs)) = k.get("vectors") {
        let single = config["params"]["vectors"].get("size").is_some();
        for (name, knobs) in vs {
            let Value::Object(knobs) = knobs else {
                continue;
            };
            let target = if single && name.is_empty() {
                &mut config["params"]["vectors"]
            } else if config["params"]["vectors"].get(name).is_some() {
                &mut config["params"]["vectors"][name]
            } else {
                continue;
            };
            if let Value::Object(t) = target {
                for (kk, v) in knobs {
                    t.insert(kk.clone(), v.clone());
                }
            }
        }
    }
    if let Some(Value::Object(sp)) = k.get("sparse_vectors") {
        for (name, knobs) in sp {
            if let Value::Object(t) = &mut config["params"]["sparse_vectors"][name]
                && let Value::Object(knobs) = knobs
            {
                for (kk, v) in knobs {
                    t.insert(kk.clone(), v.clone());
                }
            }
        }
    }
    if let Some(Value::Object(p)) = k.get("params")
        && let Value::Object(t) = &mut config["params"]
    {
        for (kk, v) in p {
            if kk != "vectors" && kk != "sparse_vectors" {
                t.insert(kk.clone(), v.clone());
            }
        }
    }
    overlay(config, "hnsw_config", k.get("hnsw_config"));
    overlay(config, "optimizer_config", k.get("optimizers_config"));
    overlay(config, "wal_config", k.get("wal_config"));
    if let Some(q) = k.get("quantization_config") {
        config["quantization_config"] = q.clone();
    }
}

/// The payload index schemas as clients declared them (`field_schema`: a type name or an
/// object of parameters), by field, reported back in `payload_schema` as Qdrant does.
fn index_schemas(metadata: &Map<String, Value>) -> Map<String, Value> {
    metadata
        .get(KNOBS_KEY)
        .and_then(|k| k.get("index_schemas"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The type name of a declared schema.
fn schema_type(schema: &Value) -> Option<&str> {
    schema
        .as_str()
        .or_else(|| schema.get("type").and_then(Value::as_str))
}

/// The fields declared with a `geo` payload index. hybridb has no geo index: geo conditions
/// are decided from payloads (candidates narrowed by the other conditions' indexes), so the
/// declaration is kept here only to be reported in `payload_schema`.
pub(crate) fn geo_fields(metadata: &Map<String, Value>) -> Vec<String> {
    index_schemas(metadata)
        .into_iter()
        .filter(|(_, s)| schema_type(s) == Some("geo"))
        .map(|(f, _)| f)
        .collect()
}

/// A `payload_schema` entry for `field` as declared (`data_type` the declared type; `params`
/// the declared object, none for a bare type name), or `None` when it was not declared
/// through this layer.
pub(crate) fn reported_schema(
    metadata: &Map<String, Value>,
    field: &str,
    points: u64,
) -> Option<Value> {
    let schemas = index_schemas(metadata);
    let schema = schemas.get(field)?;
    let data_type = schema_type(schema)?;
    Some(if schema.is_string() {
        json!({"data_type": data_type, "points": points})
    } else {
        json!({"data_type": data_type, "params": schema, "points": points})
    })
}

/// The metadata patch that records `field`'s declared schema (`None`: forgets it); `None`
/// when that changes nothing.
pub(crate) fn index_patch(
    metadata: &Map<String, Value>,
    field: &str,
    schema: Option<&Value>,
) -> Option<Map<String, Value>> {
    let mut schemas = index_schemas(metadata);
    if schemas.get(field) == schema {
        return None;
    }
    match schema {
        Some(s) => schemas.insert(field.to_string(), s.clone()),
        None => schemas.remove(field),
    };
    let mut k = metadata
        .get(KNOBS_KEY)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if schemas.is_empty() {
        k.remove("index_schemas");
    } else {
        k.insert("index_schemas".into(), Value::Object(schemas));
    }
    let mut patch = Map::new();
    patch.insert(
        KNOBS_KEY.into(),
        if k.is_empty() {
            Value::Null
        } else {
            Value::Object(k)
        },
    );
    Some(patch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_are_kept_merged_and_reported_as_qdrant_does() {
        let body = json!({
            "vectors": {"size": 4, "distance": "Dot", "on_disk": true},
            "sparse_vectors": {"s": {}},
            "on_disk_payload": false,
            "wal_config": {"wal_capacity_mb": null, "wal_segments_ahead": 2},
        });
        let k = at_create(&body);
        assert_eq!(
            Value::Object(k.clone()),
            json!({"vectors": {"": {"on_disk": true}}, "wal_config": {"wal_segments_ahead": 2},
                   "params": {"on_disk_payload": false}})
        );
        let patch = json!({
            "vectors": {"": {"hnsw_config": {"m": 32}, "quantization_config": {"scalar": {"type": "int8"}}}},
            "sparse_vectors": {"s": {"index": {"on_disk": true}}},
            "hnsw_config": {"ef_construct": 123},
            "optimizers_config": {"default_segment_number": 6},
        });
        let k = patched(Some(&Value::Object(k)), &patch);
        let k = patched(
            Some(&Value::Object(k)),
            &json!({"vectors": {"": {"hnsw_config": {"ef_construct": 100}, "quantization_config": "Disabled"}}}),
        );
        let mut meta = Map::new();
        meta.insert(KNOBS_KEY.into(), Value::Object(k));
        meta.insert("owner".into(), json!("me"));
        let mut config = json!({
            "params": {"vectors": {"size": 4, "distance": "Dot"}, "sparse_vectors": {"s": {}},
                       "on_disk_payload": true},
            "hnsw_config": {"m": 16, "ef_construct": 100},
            "optimizer_config": {"default_segment_number": 0},
            "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
            "quantization_config": null,
        });
        report(&mut config, &meta);
        assert_eq!(
            config,
            json!({
                "params": {"vectors": {"size": 4, "distance": "Dot", "on_disk": true,
                                       "hnsw_config": {"m": 32, "ef_construct": 100}},
                           "sparse_vectors": {"s": {"index": {"on_disk": true}}},
                           "on_disk_payload": false},
                "hnsw_config": {"m": 16, "ef_construct": 123},
                "optimizer_config": {"default_segment_number": 6},
                "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 2},
                "quantization_config": null,
            })
        );
        assert_eq!(
            Value::Object(reported_metadata(&meta)),
            json!({"owner": "me"})
        );
        assert!(user_metadata(&Some(json!({KNOBS_KEY: 1}))).is_err());
    }

    #[test]
    fn index_declarations_come_and_go() {
        let mut meta = Map::new();
        meta.extend(index_patch(&meta, "loc", Some(&json!("geo"))).unwrap());
        let params = json!({"type": "integer", "lookup": true, "range": true});
        meta.extend(index_patch(&meta, "n", Some(&params)).unwrap());
        assert_eq!(geo_fields(&meta), ["loc"]);
        assert_eq!(
            reported_schema(&meta, "loc", 3),
            Some(json!({"data_type": "geo", "points": 3}))
        );
        assert_eq!(
            reported_schema(&meta, "n", 0),
            Some(json!({"data_type": "integer", "params": params, "points": 0}))
        );
        assert_eq!(reported_schema(&meta, "other", 0), None);
        assert!(index_patch(&meta, "loc", Some(&json!("geo"))).is_none());
        assert!(index_patch(&meta, "other", None).is_none());
        meta.extend(index_patch(&meta, "n", None).unwrap());
        let patch = index_patch(&meta, "loc", None).unwrap();
        assert_eq!(patch[KNOBS_KEY], Value::Null);
    }
}
