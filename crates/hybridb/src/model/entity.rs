//! Entities as callers write them and records as hybridb stores and returns them.
//!
//! Stored forms (see `docs/format.md`):
//! - entity record: `[format=1][slot: u32 LE][version: u64 LE][updated_at: u64 LE][payload JSON]`;
//! - vector: the components as little-endian `f32`, decoded by copying (redb values are
//!   1-byte aligned, so stored bytes are never cast to `&[f32]`).

use serde_json::{Map, Value};

use crate::model::config::Metric;
use crate::model::error::{EntityProblem, Result, corrupted};
use crate::model::id::EntityId;

/// An entity to write: its id, its structured state (a JSON object) and its embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// The entity's id.
    pub id: EntityId,
    /// Structured state; must be a JSON object.
    pub payload: Value,
    /// The embedding; its length must equal the collection's dimension.
    pub vector: Vec<f32>,
}

impl Entity {
    /// Builds an entity.
    pub fn new(id: EntityId, payload: Value, vector: Vec<f32>) -> Self {
        Entity {
            id,
            payload,
            vector,
        }
    }
}

/// A stored entity as read back: the entity plus its version and last write time.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The entity's id.
    pub id: EntityId,
    /// Structured state (a JSON object).
    pub payload: Map<String, Value>,
    /// The embedding exactly as written (not normalised).
    pub vector: Vec<f32>,
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

/// Checks a vector against a collection's dimension and metric.
pub(crate) fn check_vector(v: &[f32], dim: usize, metric: Metric) -> Result<(), EntityProblem> {
    if v.len() != dim {
        return Err(EntityProblem::WrongDimension {
            expected: dim,
            got: v.len(),
        });
    }
    if let Some((position, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(EntityProblem::NonFinite { position, value });
    }
    if metric == Metric::Cosine && norm(v) == 0.0 {
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

/// Euclidean norm, accumulated in f64 so that large or tiny components do not over/underflow.
pub(crate) fn norm(v: &[f32]) -> f32 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt() as f32
}

/// The vector as the index holds it: unit length under cosine, unchanged otherwise.
pub(crate) fn index_form(v: &[f32], metric: Metric) -> Vec<f32> {
    match metric {
        Metric::Cosine => {
            let n = f64::from(norm(v));
            v.iter().map(|&x| (f64::from(x) / n) as f32).collect()
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
