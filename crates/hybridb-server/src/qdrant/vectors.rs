//! Qdrant's vectors on hybridb's: how a collection's Qdrant vectors map onto the engine's
//! default and named vectors, reading vector values in Qdrant's forms, and writing stored
//! vectors back in them.
//!
//! The mapping ([`Layout`]):
//! - a collection of one unnamed dense vector (`vectors: {size, distance}`) and nothing else
//!   uses the engine's default vector, as before named vectors existed: every point must
//!   carry it;
//! - any other collection (named dense vectors, sparse vectors, or the unnamed vector beside
//!   them) has no default vector in the engine: each Qdrant vector is an engine named vector
//!   of the same name, and Qdrant's unnamed vector `""` is stored under [`UNNAMED`]. Every
//!   vector is then optional per point, as in Qdrant.
//!
//! Answers follow Qdrant's rule for a point's vectors: the bare list when the only vector
//! selected is the unnamed dense one, else an object of name to vector (dense list or
//! `{indices, values}`), empty when the point has none of those selected.

use std::collections::BTreeMap;

use hybridb::{
    CollectionConfig, Entity, EntityId, Metric, NamedVector, SparseVector, VectorConfig,
};
use serde_json::{Map, Value, json};

use super::convert::{bad, prepare, unsupported};
use crate::error::{ApiError, ErrorCode};

/// The engine name of Qdrant's unnamed vector in a collection that has other vectors too.
/// Refused as a Qdrant vector name.
pub(crate) const UNNAMED: &str = "(unnamed)";

/// A vector value in one of Qdrant's forms this layer stores.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum QVector {
    /// A dense vector.
    Dense(Vec<f32>),
    /// A sparse vector, sorted by index.
    Sparse(SparseVector),
}

/// The Qdrant name of an engine vector name.
pub(crate) fn qdrant_name(engine: &str) -> &str {
    if engine == UNNAMED { "" } else { engine }
}

/// 400 for a vector name the collection does not have, in Qdrant's words.
pub(crate) fn no_such_vector(name: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidQuery,
        format!("Wrong input: Not existing vector name error: {name}"),
    )
}

/// What a vector is, for the layer's checks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// Dense, compared by `metric`.
    Dense(Metric),
    /// Sparse (dot product).
    Sparse,
}

/// A collection's vectors as Qdrant sees them.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    config: CollectionConfig,
}

impl Layout {
    /// The layout of a collection with `config`.
    pub(crate) fn of(config: CollectionConfig) -> Self {
        Layout { config }
    }

    /// The engine name and kind of Qdrant's vector `name` (`""`: the unnamed one).
    pub(crate) fn resolve(&self, name: &str) -> Result<(String, Kind), ApiError> {
        if name.is_empty() && self.config.has_default_vector() {
            return Ok((String::new(), Kind::Dense(self.config.metric)));
        }
        let engine = if name.is_empty() { UNNAMED } else { name };
        if name == UNNAMED {
            return Err(no_such_vector(name));
        }
        match self.config.vectors.get(engine) {
            Some(VectorConfig::Dense { metric, .. }) => {
                Ok((engine.to_string(), Kind::Dense(*metric)))
            }
            Some(VectorConfig::Sparse { .. }) => Ok((engine.to_string(), Kind::Sparse)),
            Some(_) | None => Err(no_such_vector(name)),
        }
    }

    /// The entity of a point: its vectors by Qdrant name, checked against the collection
    /// (cosine vectors normalised, as Qdrant stores them). `at` names the point.
    pub(crate) fn entity(
        &self,
        id: EntityId,
        payload: Value,
        vectors: BTreeMap<String, QVector>,
        at: &str,
    ) -> Result<Entity, ApiError> {
        let mut entity = Entity::new(id, payload, Vec::new());
        self.apply(&mut entity, vectors, at)?;
        if self.config.has_default_vector() && entity.vector.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidEntity,
                format!(
                    "{at}: missing the unnamed vector: this collection (one unnamed vector, \
                     nothing else) needs it on every point"
                ),
            ));
        }
        Ok(entity)
    }

    /// Sets (or replaces) `vectors`, by Qdrant name, on `entity`, checking each name, kind
    /// and dimension (cosine vectors normalised).
    pub(crate) fn apply(
        &self,
        entity: &mut Entity,
        vectors: BTreeMap<String, QVector>,
        at: &str,
    ) -> Result<(), ApiError> {
        let invalid = |why: String| ApiError::new(ErrorCode::InvalidEntity, format!("{at}: {why}"));
        for (name, v) in vectors {
            let (engine, kind) = self
                .resolve(&name)
                .map_err(|_| invalid(format!("Not existing vector name error: {name}")))?;
            match (kind, v) {
                (Kind::Dense(metric), QVector::Dense(d)) => {
                    let dim = self.dim(&engine);
                    if d.len() != dim {
                        return Err(invalid(format!(
                            "vector {name:?} has dimension {}, expected {dim}",
                            d.len()
                        )));
                    }
                    let d = prepare(d, metric);
                    if engine.is_empty() {
                        entity.vector = d;
                    } else {
                        entity.vectors.insert(engine, NamedVector::Dense(d));
                    }
                }
                (Kind::Sparse, QVector::Sparse(s)) => {
                    entity.vectors.insert(engine, NamedVector::Sparse(s));
                }
                (Kind::Dense(_), QVector::Sparse(_)) => {
                    return Err(invalid(format!(
                        "vector {name:?} is dense, got a sparse vector"
                    )));
                }
                (Kind::Sparse, QVector::Dense(_)) => {
                    return Err(invalid(format!(
                        "vector {name:?} is sparse, got a dense vector"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The dimension of the dense vector `engine` (0 if there is none).
    fn dim(&self, engine: &str) -> usize {
        if engine.is_empty() {
            return self.config.dim as usize;
        }
        match self.config.vectors.get(engine) {
            Some(VectorConfig::Dense { dim, .. }) => *dim as usize,
            _ => 0,
        }
    }

    /// Qdrant's `config.params.vectors` and `config.params.sparse_vectors` of the collection.
    pub(crate) fn params(&self) -> (Value, Option<Value>) {
        let mut dense = Map::new();
        let mut sparse = Map::new();
        if self.config.has_default_vector() {
            dense.insert(
                String::new(),
                dense_params(self.config.dim, self.config.metric),
            );
        }
        for (name, v) in &self.config.vectors {
            match v {
                VectorConfig::Dense { dim, metric, .. } => {
                    dense.insert(qdrant_name(name).to_string(), dense_params(*dim, *metric));
                }
                VectorConfig::Sparse { idf } => {
                    let params = if *idf {
                        json!({"modifier": "idf"})
                    } else {
                        json!({})
                    };
                    sparse.insert(name.clone(), params);
                }
                _ => {}
            }
        }
        let vectors = match dense.get("") {
            Some(single) if dense.len() == 1 => single.clone(),
            _ => Value::Object(dense),
        };
        let sparse = (!sparse.is_empty()).then_some(Value::Object(sparse));
        (vectors, sparse)
    }
}

fn dense_params(dim: u32, metric: Metric) -> Value {
    json!({"size": dim, "distance": super::collections::distance_name(metric)})
}

/// Which vectors an answer carries (`with_vector`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VectorSelect {
    /// None (`false`).
    Nothing,
    /// Every vector (`true`).
    All,
    /// These names (Qdrant's; `""` the unnamed one).
    Names(Vec<String>),
}

impl VectorSelect {
    /// Reads `with_vector`: a bool, or a list of vector names.
    pub(crate) fn read(v: Option<&Value>) -> Result<Self, ApiError> {
        match v {
            None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(VectorSelect::Nothing),
            Some(Value::Bool(true)) => Ok(VectorSelect::All),
            Some(Value::Array(items)) => items
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(String::from)
                        .ok_or_else(|| bad("with_vector", "expected a bool or a list of names"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|names| match names.is_empty() {
                    true => VectorSelect::Nothing,
                    false => VectorSelect::Names(names),
                }),
            Some(_) => Err(bad("with_vector", "expected a bool or a list of names")),
        }
    }

    /// Whether any vector is wanted.
    pub(crate) fn any(&self) -> bool {
        *self != VectorSelect::Nothing
    }

    /// A stored entity's vectors in Qdrant's form (`None` when not asked for).
    pub(crate) fn output(
        &self,
        default: Vec<f32>,
        named: BTreeMap<String, NamedVector>,
    ) -> Option<VectorsOut> {
        if !self.any() {
            return None;
        }
        let mut all: BTreeMap<String, NamedVector> = BTreeMap::new();
        if !default.is_empty() {
            all.insert(String::new(), NamedVector::Dense(default));
        }
        for (name, v) in named {
            all.insert(qdrant_name(&name).to_string(), v);
        }
        if let VectorSelect::Names(names) = self {
            all.retain(|n, _| names.contains(n));
        }
        if all.len() == 1
            && let Some(NamedVector::Dense(_)) = all.get("")
            && let Some(NamedVector::Dense(v)) = all.remove("")
        {
            return Some(VectorsOut::Single(v));
        }
        Some(VectorsOut::Named(all))
    }
}

/// A point's vectors as Qdrant answers them: the unnamed dense vector alone as a bare list,
/// else an object of name to vector (a list, or `{indices, values}`). Floats are written as
/// the `f32`s they are (`0.05`, not `0.05000000074505806`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum VectorsOut {
    /// The unnamed dense vector alone.
    Single(Vec<f32>),
    /// Name to vector.
    Named(BTreeMap<String, NamedVector>),
}

/// Reads one vector value: a list of numbers (dense) or `{indices, values}` (sparse). A sparse
/// vector's pairs are sorted by index (Qdrant takes any order); a repeated index is refused.
pub(crate) fn read_vector(v: &Value, at: &str) -> Result<QVector, ApiError> {
    match v {
        Value::Array(items) => {
            if items.iter().any(Value::is_array) {
                return Err(unsupported(&format!("{at}: multi-vectors")));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, x)| match x.as_f64() {
                    Some(f) => Ok(f as f32),
                    None => Err(bad(&format!("{at}[{i}]"), "expected a number")),
                })
                .collect::<Result<Vec<f32>, _>>()
                .map(QVector::Dense)
        }
        Value::Object(m) if m.contains_key("indices") || m.contains_key("values") => {
            sparse(m, at).map(QVector::Sparse)
        }
        Value::Object(m) if inference(m) => Err(unsupported(&format!(
            "{at}: inference (documents, images and objects)"
        ))),
        _ => Err(bad(
            at,
            "expected a list of numbers or {\"indices\": [...], \"values\": [...]}",
        )),
    }
}

/// True for Qdrant's inference inputs (a document, an image, an object for a model).
fn inference(m: &Map<String, Value>) -> bool {
    ["text", "image", "object"]
        .iter()
        .any(|k| m.contains_key(*k))
        && m.contains_key("model")
}

/// Reads a sparse vector `{indices, values}`, sorted by index.
pub(crate) fn sparse(m: &Map<String, Value>, at: &str) -> Result<SparseVector, ApiError> {
    let list = |key: &str| match m.get(key) {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(bad(&format!("{at}.{key}"), "expected a list")),
    };
    let indices = list("indices")?
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| {
                    bad(
                        &format!("{at}.indices[{i}]"),
                        "expected an integer 0..=4294967295",
                    )
                })
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let values = list("values")?
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| bad(&format!("{at}.values[{i}]"), "expected a number"))
        })
        .collect::<Result<Vec<f32>, _>>()?;
    // Qdrant's validation messages (422), with its `?` for a vector's name, then ours.
    let qdrant_at = match at.rsplit_once('.') {
        Some((head, _)) if at.contains(".vector.") => format!("{head}.?"),
        _ => at.to_string(),
    };
    if indices.len() != values.len() {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!(
                "{qdrant_at}.values: Validation error: must be the same length as indices [{{}}] \
                 ({at}: {} indices, {} values)",
                indices.len(),
                values.len()
            ),
        ));
    }
    let mut pairs: Vec<(u32, f32)> = indices.into_iter().zip(values).collect();
    pairs.sort_by_key(|p| p.0);
    if let Some(w) = pairs.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!(
                "{qdrant_at}.indices: Validation error: must be unique [{{}}] ({at}: index {} \
                 repeats)",
                w[0].0
            ),
        ));
    }
    let (indices, values) = pairs.into_iter().unzip();
    Ok(SparseVector::new(indices, values))
}

/// Reads a point's `vector`: a list (the unnamed vector) or an object of name to vector.
pub(crate) fn read_struct(v: &Value, at: &str) -> Result<BTreeMap<String, QVector>, ApiError> {
    match v {
        Value::Array(_) => Ok(BTreeMap::from([(String::new(), read_vector(v, at)?)])),
        Value::Object(m) if inference(m) => Err(unsupported(&format!(
            "{at}: inference (documents, images and objects)"
        ))),
        Value::Object(m) => m
            .iter()
            .map(|(name, x)| Ok((name.clone(), read_vector(x, &format!("{at}.{name}"))?)))
            .collect(),
        _ => Err(bad(
            at,
            "expected a list of numbers or an object of named vectors",
        )),
    }
}

/// Qdrant's default `hnsw_config.m`.
const QDRANT_DEFAULT_M: u32 = 16;

/// Qdrant's default `hnsw_config.ef_construct`.
const QDRANT_DEFAULT_EF_CONSTRUCT: u32 = 100;

/// Reads one Qdrant vector declaration: `{size, distance, hnsw_config?, ...}` (dense, `at`
/// names it), with the collection's `hnsw_config` beneath the vector's own.
pub(crate) fn dense_config(
    params: &Value,
    collection_hnsw: &super::model::HnswConfigDiff,
    collection_quantization: Option<&Value>,
    at: &str,
) -> Result<VectorConfig, ApiError> {
    let Value::Object(p) = params else {
        return Err(bad(at, "expected {\"size\": n, \"distance\": \"Cosine\"}"));
    };
    if p.get("multivector_config").is_some_and(|v| !v.is_null()) {
        return Err(unsupported(&format!("{at}.multivector_config")));
    }
    if let Some(t) = p.get("datatype").and_then(Value::as_str)
        && t != "float32"
    {
        return Err(unsupported(&format!("{at}.datatype {t:?}")));
    }
    let size = p
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(&format!("{at}.size"), "expected a positive integer"))?;
    if !(1..=65_536).contains(&size) {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            format!("{at}.size: value {size} invalid, must be from 1 to 65536"),
        ));
    }
    if size > u64::from(hybridb::MAX_DIM) {
        return Err(bad(
            &format!("{at}.size"),
            format!(
                "{size} is above hybridb's largest dimension, {}",
                hybridb::MAX_DIM
            ),
        ));
    }
    let size = size as u32;
    let distance = p
        .get("distance")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&format!("{at}.distance"), "missing"))?;
    let metric = super::collections::metric_of(distance, at)?;
    let vector_hnsw: super::model::HnswConfigDiff = match p.get("hnsw_config") {
        None | Some(Value::Null) => Default::default(),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| bad(&format!("{at}.hnsw_config"), e))?
        }
    };
    let m = vector_hnsw.m.or(collection_hnsw.m);
    let ef_construct = vector_hnsw.ef_construct.or(collection_hnsw.ef_construct);
    // Qdrant's defaults where the client gives none (m 16, ef_construct 100; hybridb's own
    // default ef_construction is 200): a Qdrant client reads back, and gets, what Qdrant
    // would build.
    let index = match (m, ef_construct) {
        (Some(0), _) => hybridb::IndexKind::Exact,
        _ => hybridb::IndexKind::Hnsw {
            m: m.unwrap_or(QDRANT_DEFAULT_M),
            ef_construction: ef_construct.unwrap_or(QDRANT_DEFAULT_EF_CONSTRUCT),
            ef: 64,
        },
    };
    let quantization = match p.get("quantization_config").filter(|v| !v.is_null()) {
        Some(q) => quantization_of(q, &format!("{at}.quantization_config"))?,
        None => match collection_quantization.filter(|v| !v.is_null()) {
            Some(q) => quantization_of(q, "quantization_config")?,
            None => hybridb::Quantization::None,
        },
    };
    Ok(VectorConfig::dense_quantized(
        size,
        metric,
        index,
        kept_quantization(index, metric, quantization),
    ))
}

/// The code hybridb keeps for `q` on an index of `kind` under `metric`: codes need a graph,
/// and rotated codes an estimator, so where Qdrant would still quantize (an exact index,
/// Manhattan) hybridb keeps `f32` vectors.
pub(crate) fn kept_quantization(
    kind: hybridb::IndexKind,
    metric: hybridb::Metric,
    q: hybridb::Quantization,
) -> hybridb::Quantization {
    match (kind, metric, q) {
        (hybridb::IndexKind::Exact, _, _) => hybridb::Quantization::None,
        (_, hybridb::Metric::Manhattan, q) if q != hybridb::Quantization::Sq8 => {
            hybridb::Quantization::None
        }
        (_, _, q) => q,
    }
}

/// hybridb's code for a `quantization_config` of a collection update, where `"Disabled"`
/// turns quantization off.
pub(crate) fn updated_quantization(q: &Value, at: &str) -> Result<hybridb::Quantization, ApiError> {
    match q {
        Value::String(s) if s == "Disabled" => Ok(hybridb::Quantization::None),
        other => quantization_of(other, at),
    }
}

/// hybridb's code for a Qdrant `quantization_config`: `scalar` (int8) is SQ8; `binary` is the
/// rotated 1-bit code (`two_bits` and `one_and_half_bits` encodings: 2 bits); `product` and
/// unknown kinds are accepted and keep `f32` vectors (no product quantizer in hybridb).
fn quantization_of(q: &Value, at: &str) -> Result<hybridb::Quantization, ApiError> {
    let Value::Object(m) = q else {
        return Err(bad(at, "expected {\"scalar\": ...} or {\"binary\": ...}"));
    };
    Ok(if m.contains_key("scalar") {
        hybridb::Quantization::Sq8
    } else if let Some(b) = m.get("binary") {
        match b.get("encoding").and_then(Value::as_str) {
            Some("two_bits") | Some("one_and_half_bits") => hybridb::Quantization::Rq2,
            _ => hybridb::Quantization::Rq1,
        }
    } else {
        hybridb::Quantization::None
    })
}

/// Reads one Qdrant sparse vector declaration: `{modifier?: "idf" | "none", index?}`.
pub(crate) fn sparse_config(params: &Value, at: &str) -> Result<VectorConfig, ApiError> {
    let p = match params {
        Value::Null => return Ok(VectorConfig::sparse(false)),
        Value::Object(p) => p,
        _ => return Err(bad(at, "expected {\"modifier\": \"idf\" | \"none\"}")),
    };
    // The index's storage knobs are accepted (values are stored as f32 either way), except
    // datatypes Qdrant refuses for sparse vectors.
    if let Some(t) = p
        .get("index")
        .and_then(|i| i.get("datatype"))
        .and_then(Value::as_str)
        && !matches!(t, "float32" | "float16" | "uint8")
    {
        return Err(bad(
            &format!("{at}.index.datatype"),
            format!("sparse vectors do not support the datatype {t:?}"),
        ));
    }
    let idf = match p.get("modifier") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("idf") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("none") => false,
        Some(other) => {
            return Err(bad(
                &format!("{at}.modifier"),
                format!("expected \"idf\" or \"none\", got {other}"),
            ));
        }
    };
    Ok(VectorConfig::sparse(idf))
}

/// Checks a Qdrant vector name given by a client.
pub(crate) fn check_name(name: &str, at: &str) -> Result<(), ApiError> {
    if name == UNNAMED {
        return Err(bad(
            at,
            format!("the vector name {UNNAMED:?} is reserved by hybridb for the unnamed vector"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_in_their_forms() {
        assert_eq!(
            read_vector(&json!([1, 2.5]), "v").unwrap(),
            QVector::Dense(vec![1.0, 2.5])
        );
        assert_eq!(
            read_vector(&json!({"indices": [9, 2], "values": [0.5, 1]}), "v").unwrap(),
            QVector::Sparse(SparseVector::new(vec![2, 9], vec![1.0, 0.5]))
        );
        for (v, words) in [
            (
                json!({"indices": [1, 1], "values": [1, 2]}),
                "must be unique [{}] (v: index 1",
            ),
            (
                json!({"indices": [1], "values": [1, 2]}),
                "must be the same length as indices",
            ),
            (json!({"indices": [-1], "values": [1]}), "indices[0]"),
            (json!([[1.0], [2.0]]), "multi-vectors"),
            (json!({"text": "hi", "model": "m"}), "inference"),
            (json!("x"), "expected a list"),
        ] {
            let e = read_vector(&v, "v").unwrap_err();
            assert!(e.message.contains(words), "{v}: {e}");
        }
        let named =
            read_struct(&json!({"": [1], "s": {"indices": [], "values": []}}), "v").unwrap();
        assert_eq!(named.len(), 2);
    }

    #[test]
    fn layouts_map_the_unnamed_vector() {
        let plain = Layout::of(CollectionConfig::new(2, Metric::Dot));
        assert_eq!(plain.resolve("").unwrap().0, "");
        assert!(plain.resolve("x").is_err());
        let mixed = Layout::of(
            CollectionConfig::named_only()
                .with_vector(UNNAMED, VectorConfig::dense(2, Metric::Cosine))
                .with_vector("s", VectorConfig::sparse(true)),
        );
        assert_eq!(
            mixed.resolve("").unwrap(),
            (UNNAMED.to_string(), Kind::Dense(Metric::Cosine))
        );
        assert_eq!(mixed.resolve("s").unwrap().1, Kind::Sparse);
        assert!(mixed.resolve(UNNAMED).is_err());
        let (vectors, sparse) = mixed.params();
        assert_eq!(vectors, json!({"size": 2, "distance": "Cosine"}));
        assert_eq!(sparse, Some(json!({"s": {"modifier": "idf"}})));
        // The output form: the bare list only for the unnamed vector alone.
        let named = BTreeMap::from([(UNNAMED.to_string(), NamedVector::Dense(vec![1.0, 0.0]))]);
        let out =
            |sel: &VectorSelect, named| serde_json::to_value(sel.output(vec![], named)).unwrap();
        assert_eq!(out(&VectorSelect::All, named.clone()), json!([1.0, 0.0]));
        let both = {
            let mut m = named.clone();
            m.insert(
                "s".into(),
                NamedVector::Sparse(SparseVector::new(vec![1], vec![2.0])),
            );
            m
        };
        assert_eq!(
            out(&VectorSelect::All, both.clone()),
            json!({"": [1.0, 0.0], "s": {"indices": [1], "values": [2.0]}})
        );
        assert_eq!(
            out(&VectorSelect::Names(vec!["".into()]), both),
            json!([1.0, 0.0])
        );
        assert_eq!(out(&VectorSelect::All, BTreeMap::new()), json!({}));
        assert_eq!(
            VectorSelect::Nothing.output(vec![1.0], BTreeMap::new()),
            None
        );
    }
}
