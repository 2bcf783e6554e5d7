//! Entities as callers write them and records as hybridb stores and returns them.
//!
//! Stored forms (see `docs/format.md`):
//! - entity record: `[format=1][slot: u32 LE][version: u64 LE][updated_at: u64 LE][payload JSON]`;
//! - vector: the components as little-endian `f32`, decoded by copying (redb values are
//!   1-byte aligned, so stored bytes are never cast to `&[f32]`);
//! - sparse vector: `[format=1][n: u32 LE][n x index: u32 LE][n x value: f32 LE]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::config::{Metric, VectorConfig};
use crate::model::error::{EntityProblem, Result, corrupted};
use crate::model::id::EntityId;
use crate::model::sparse::SparseVector;

/// The value of a named vector: dense components or a sparse vector.
///
/// In JSON a dense vector is an array of numbers and a sparse one an object
/// `{"indices": [...], "values": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NamedVector {
    /// Dense components; the length must equal the named vector's dimension.
    Dense(Vec<f32>),
    /// A sparse vector.
    Sparse(SparseVector),
}

impl NamedVector {
    /// `"dense"` or `"sparse"`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            NamedVector::Dense(_) => "dense",
            NamedVector::Sparse(_) => "sparse",
        }
    }

    /// Rough size in bytes (group-commit limits, cache weights).
    pub(crate) fn approx_bytes(&self) -> usize {
        match self {
            NamedVector::Dense(v) => v.len() * 4,
            NamedVector::Sparse(s) => s.len() * 8,
        }
    }
}

impl From<Vec<f32>> for NamedVector {
    fn from(v: Vec<f32>) -> Self {
        NamedVector::Dense(v)
    }
}

impl From<SparseVector> for NamedVector {
    fn from(v: SparseVector) -> Self {
        NamedVector::Sparse(v)
    }
}

/// An entity to write: its id, its structured state (a JSON object), its default embedding
/// and any named vectors.
///
/// An upsert replaces the whole entity: named vectors it does not carry are removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// The entity's id.
    pub id: EntityId,
    /// Structured state; must be a JSON object.
    pub payload: Value,
    /// The default embedding; its length must equal the collection's dimension (empty in a
    /// collection without a default vector).
    pub vector: Vec<f32>,
    /// Named vectors, by name; each must be declared by the collection with the same kind.
    pub vectors: BTreeMap<String, NamedVector>,
}

impl Entity {
    /// Builds an entity with a default vector and no named ones.
    pub fn new(id: EntityId, payload: Value, vector: Vec<f32>) -> Self {
        Entity {
            id,
            payload,
            vector,
            vectors: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) the named vector `name`.
    ///
    /// ```
    /// use hybridb::{Entity, EntityId, SparseVector};
    /// let e = Entity::new(EntityId::from_key("a"), serde_json::json!({}), vec![])
    ///     .with_vector("title", vec![0.1, 0.2])
    ///     .with_vector("terms", SparseVector::new(vec![3, 17], vec![0.5, 1.2]));
    /// assert_eq!(e.vectors.len(), 2);
    /// ```
    pub fn with_vector(mut self, name: impl Into<String>, vector: impl Into<NamedVector>) -> Self {
        self.vectors.insert(name.into(), vector.into());
        self
    }
}

/// A stored entity as read back: the entity plus its version and last write time.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The entity's id.
    pub id: EntityId,
    /// Structured state (a JSON object).
    pub payload: Map<String, Value>,
    /// The default embedding exactly as written (not normalised; empty without one).
    pub vector: Vec<f32>,
    /// The named vectors the entity has, exactly as written.
    pub vectors: BTreeMap<String, NamedVector>,
    /// 1 on creation, +1 on every write.
    pub version: u64,
    /// Time of the last write, milliseconds since the Unix epoch.
    pub updated_at: u64,
}

const RECORD_FORMAT: u8 = 1;
const RECORD_HEADER: usize = 1 + 4 + 8 + 8;

/// The decoded fixed part of a stored entity record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub slot: u32,
    pub version: u64,
    pub updated_at: u64,
}

pub(crate) fn encode_record(header: RecordHeader, payload_json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER + payload_json.len());
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&header.slot.to_le_bytes());
    out.extend_from_slice(&header.version.to_le_bytes());
    out.extend_from_slice(&header.updated_at.to_le_bytes());
    out.extend_from_slice(payload_json);
    out
}

/// Splits a stored record into its header and payload JSON bytes.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<(RecordHeader, &[u8])> {
    if bytes.len() < RECORD_HEADER {
        return Err(corrupted(format!(
            "entity record of {} bytes is shorter than its header",
            bytes.len()
        )));
    }
    if bytes[0] != RECORD_FORMAT {
        return Err(corrupted(format!("entity record format {}", bytes[0])));
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let header = RecordHeader {
        slot: u32_at(1),
        version: u64_at(5),
        updated_at: u64_at(13),
    };
    Ok((header, &bytes[RECORD_HEADER..]))
}

pub(crate) fn decode_payload(json: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice(json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(corrupted("stored payload is not a JSON object")),
        Err(e) => Err(corrupted(format!("stored payload: {e}"))),
    }
}

pub(crate) fn encode_vector(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Decodes little-endian `f32`s by copying; checks the length against `dim`.
pub(crate) fn decode_vector(bytes: &[u8], dim: usize) -> Result<Vec<f32>> {
    if bytes.len() != dim * 4 {
        return Err(corrupted(format!(
            "stored vector has {} bytes, expected {}",
            bytes.len(),
            dim * 4
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

const SPARSE_FORMAT: u8 = 1;

/// Encodes a (checked) sparse vector.
pub(crate) fn encode_sparse(v: &SparseVector) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + v.len() * 8);
    out.push(SPARSE_FORMAT);
    out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    for i in &v.indices {
        out.extend_from_slice(&i.to_le_bytes());
    }
    for x in &v.values {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Decodes a stored sparse vector and checks its invariant.
pub(crate) fn decode_sparse(bytes: &[u8]) -> Result<SparseVector> {
    let bad = |why: &str| corrupted(format!("stored sparse vector: {why}"));
    let (&format, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
    if format != SPARSE_FORMAT {
        return Err(bad(&format!("format {format}")));
    }
    if rest.len() < 4 {
        return Err(bad("no length"));
    }
    let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let body = &rest[4..];
    if body.len() != n * 8 {
        return Err(bad(&format!("{} bytes for {n} entries", body.len())));
    }
    let word = |c: &[u8]| [c[0], c[1], c[2], c[3]];
    let v = SparseVector {
        indices: body[..n * 4]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(word(c)))
            .collect(),
        values: body[n * 4..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(word(c)))
            .collect(),
    };
    v.check().map_err(|p| bad(&p.to_string()))?;
    Ok(v)
}

/// Checks a named vector against its declaration and returns its stored bytes.
pub(crate) fn check_named(
    name: &str,
    value: &NamedVector,
    config: Option<&VectorConfig>,
) -> Result<Vec<u8>, EntityProblem> {
    let within = |problem| EntityProblem::InVector {
        name: name.to_string(),
        problem: Box::new(problem),
    };
    match (config, value) {
        (None, _) => Err(EntityProblem::UnknownVector {
            name: name.to_string(),
        }),
        (Some(VectorConfig::Dense { dim, metric, .. }), NamedVector::Dense(v)) => {
            check_vector(v, *dim as usize, *metric).map_err(within)?;
            Ok(encode_vector(v))
        }
        (Some(VectorConfig::Sparse { .. }), NamedVector::Sparse(v)) => {
            v.check().map_err(within)?;
            Ok(encode_sparse(v))
        }
        (Some(c), v) => Err(EntityProblem::WrongVectorKind {
            name: name.to_string(),
            declared: c.kind_name(),
            got: v.kind_name(),
        }),
    }
}

/// Decodes a stored named vector of the declared kind.
pub(crate) fn decode_named(bytes: &[u8], config: &VectorConfig) -> Result<NamedVector> {
    match config {
        VectorConfig::Dense { dim, .. } => {
            Ok(NamedVector::Dense(decode_vector(bytes, *dim as usize)?))
        }
        VectorConfig::Sparse { .. } => Ok(NamedVector::Sparse(decode_sparse(bytes)?)),
    }
}

/// Checks a vector against a collection's dimension and metric.
pub(crate) fn check_vector(v: &[f32], dim: usize, metric: Metric) -> Result<(), EntityProblem> {
    if v.len() != dim {
        return Err(EntityProblem::WrongDimension {
            expected: dim,
            got: v.len(),
        });
    }
    // The position is looked for only in the rare bad vector.
    if !all_finite(v)
        && let Some((position, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite())
    {
        return Err(EntityProblem::NonFinite { position, value });
    }
    // The norm is 0 only for the zero vector (squares of `f32` values neither underflow nor
    // overflow in `f64`).
    if metric == Metric::Cosine && v.iter().all(|&x| x == 0.0) {
        return Err(EntityProblem::ZeroVector);
    }
    Ok(())
}

/// Checks a payload and returns its JSON encoding.
pub(crate) fn check_payload(payload: &Value, limit: usize) -> Result<Vec<u8>, EntityProblem> {
    if !payload.is_object() {
        return Err(EntityProblem::PayloadNotObject {
            kind: json_kind(payload),
        });
    }
    // Serialising a `Value` cannot fail: its map keys are strings.
    let json = serde_json::to_vec(payload).unwrap_or_default();
    if json.len() > limit {
        return Err(EntityProblem::PayloadTooLarge {
            size: json.len(),
            limit,
        });
    }
    Ok(json)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Whether every value is finite: one pass without an early exit, so that it vectorises
/// (every search and write checks its vector).
pub(crate) fn all_finite(v: &[f32]) -> bool {
    v.iter().fold(true, |ok, x| ok & x.is_finite())
}

/// Euclidean norm, accumulated in f64 so that large or tiny components do not over/underflow.
pub(crate) fn norm(v: &[f32]) -> f32 {
    // Eight running sums, so that the loop vectorises (one sum is a serial chain of `f64`
    // additions: about 0.5 µs at 384 dimensions, paid by every cosine search and write).
    let (chunks, rest) = v.as_chunks::<8>();
    let mut lanes = [0.0f64; 8];
    for c in chunks {
        for (s, &x) in lanes.iter_mut().zip(c) {
            *s += f64::from(x) * f64::from(x);
        }
    }
    let tail: f64 = rest.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (lanes.iter().sum::<f64>() + tail).sqrt() as f32
}

/// The vector as the index holds it: unit length under cosine, unchanged otherwise.
pub(crate) fn index_form(v: &[f32], metric: Metric) -> Vec<f32> {
    match metric {
        Metric::Cosine => {
            // One division, then products: within an `f64` ulp of dividing each value, so
            // the `f32` results are the quotients' (up to a double-rounding tie).
            let inv = 1.0 / f64::from(norm(v));
            v.iter().map(|&x| (f64::from(x) * inv) as f32).collect()
        }
        Metric::Dot | Metric::L2 | Metric::Manhattan => v.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_damage() {
        let h = RecordHeader {
            slot: 42,
            version: 7,
            updated_at: 1_700_000_000_000,
        };
        let bytes = encode_record(h, br#"{"a":1}"#);
        let (h2, json) = decode_record(&bytes).unwrap();
        assert_eq!(h2, h);
        assert_eq!(decode_payload(json).unwrap()["a"], 1);
        assert!(decode_record(&bytes[..10]).is_err());
        let mut bad = bytes.clone();
        bad[0] = 9;
        assert!(decode_record(&bad).is_err());
        assert!(decode_payload(b"[1]").is_err());
    }

    #[test]
    fn vector_round_trip_and_length_check() {
        let v = vec![1.5f32, -0.0, f32::MAX, 1e-30];
        assert_eq!(decode_vector(&encode_vector(&v), 4).unwrap(), v);
        assert!(decode_vector(&encode_vector(&v), 3).is_err());
    }

    #[test]
    fn sparse_round_trip_and_damage() {
        let v = SparseVector::new(vec![1, 7, 300], vec![0.5, -2.0, 1e-3]);
        let bytes = encode_sparse(&v);
        assert_eq!(decode_sparse(&bytes).unwrap(), v);
        assert!(decode_sparse(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_sparse(&[]).is_err());
        let mut unsorted = bytes.clone();
        unsorted[5..9].copy_from_slice(&500u32.to_le_bytes());
        assert!(decode_sparse(&unsorted).is_err());
        assert_eq!(
            decode_sparse(&encode_sparse(&SparseVector::default()))
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn named_checks() {
        let dense = VectorConfig::dense(2, Metric::Cosine);
        let sparse = VectorConfig::sparse(false);
        assert!(check_named("d", &NamedVector::Dense(vec![1.0, 0.0]), Some(&dense)).is_ok());
        assert!(matches!(
            check_named("d", &NamedVector::Dense(vec![0.0, 0.0]), Some(&dense)),
            Err(EntityProblem::InVector { .. })
        ));
        assert!(matches!(
            check_named("x", &NamedVector::Dense(vec![1.0]), None),
            Err(EntityProblem::UnknownVector { .. })
        ));
        assert!(matches!(
            check_named(
                "d",
                &NamedVector::Sparse(SparseVector::default()),
                Some(&dense)
            ),
            Err(EntityProblem::WrongVectorKind { .. })
        ));
        let unsorted = NamedVector::Sparse(SparseVector::new(vec![2, 1], vec![1.0, 1.0]));
        assert!(matches!(
            check_named("s", &unsorted, Some(&sparse)),
            Err(EntityProblem::InVector { .. })
        ));
    }

    #[test]
    fn vector_checks() {
        assert_eq!(
            check_vector(&[1.0, 2.0], 3, Metric::L2),
            Err(EntityProblem::WrongDimension {
                expected: 3,
                got: 2
            })
        );
        assert!(matches!(
            check_vector(&[1.0, f32::NAN], 2, Metric::L2),
            Err(EntityProblem::NonFinite { position: 1, .. })
        ));
        assert!(matches!(
            check_vector(&[f32::INFINITY, 0.0], 2, Metric::Dot),
            Err(EntityProblem::NonFinite { position: 0, .. })
        ));
        assert_eq!(
            check_vector(&[0.0, 0.0], 2, Metric::Cosine),
            Err(EntityProblem::ZeroVector)
        );
        assert!(check_vector(&[0.0, 0.0], 2, Metric::L2).is_ok());
    }

    #[test]
    fn cosine_index_form_is_unit_length() {
        let v = index_form(&[3.0, 4.0], Metric::Cosine);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(index_form(&[3.0, 4.0], Metric::L2), vec![3.0, 4.0]);
    }
}
