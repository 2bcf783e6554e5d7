//! Payload indexes: which values an entity's indexed fields hold, as order-preserving byte keys,
//! stored in redb (`c{cid}.postings`) in the same transaction as the entity and mirrored in
//! memory ([`postings::PayloadIndex`]) for filter evaluation.
//!
//! Invariants:
//! - a write whose indexed field holds a value of another type than the index is refused
//!   ([`EntityProblem::PayloadIndexType`]), so the index and [`crate::Filter::matches`] always
//!   agree on what a field holds;
//! - the postings table holds exactly one row `(field, value, slot)` per distinct indexed leaf
//!   value of every entity (and one `(field, null, slot)` row when a leaf is `null`), and the
//!   in-memory mirror equals it once the writer has applied the commit.

pub(crate) mod eval;
pub(crate) mod postings;

use std::collections::BTreeMap;

use redb::TableDefinition;
use serde_json::{Map, Value};

use crate::model::config::PayloadIndexKind;
use crate::model::error::EntityProblem;
use crate::query::datetime::parse_datetime;
use crate::query::filter::leaves;

/// One indexed value of a field: `None` stands for `null`.
pub(crate) type ValueKey = Option<Vec<u8>>;

/// One row of the postings: a field and one of its values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PostingKey {
    pub field: String,
    pub value: ValueKey,
}

/// The postings table of a collection: encoded `(field, value, slot)` rows, no value.
pub(crate) fn postings_table(name: &str) -> TableDefinition<'_, &'static [u8], ()> {
    TableDefinition::new(name)
}

/// Human name of an index type (for errors).
pub(crate) fn kind_name(kind: PayloadIndexKind) -> &'static str {
    match kind {
        PayloadIndexKind::Keyword => "keyword",
        PayloadIndexKind::Integer => "integer",
        PayloadIndexKind::Float => "float",
        PayloadIndexKind::Bool => "bool",
        PayloadIndexKind::Datetime => "datetime",
    }
}

/// Order-preserving key of an `i64`.
pub(crate) fn int_key(i: i64) -> Vec<u8> {
    ((i as u64) ^ (1 << 63)).to_be_bytes().to_vec()
}

/// Order-preserving key of a finite `f64` (`-0.0` and `0.0` share one key).
pub(crate) fn float_key(f: f64) -> Vec<u8> {
    let f = if f == 0.0 { 0.0 } else { f };
    let bits = f.to_bits();
    let ordered = if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    };
    ordered.to_be_bytes().to_vec()
}

/// The key of one payload leaf under an index of type `kind`, or what the leaf is instead.
fn leaf_key(kind: PayloadIndexKind, v: &Value) -> Result<ValueKey, String> {
    let found = || match v {
        Value::Bool(_) => "a boolean".to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {:?}", s.chars().take(40).collect::<String>()),
        Value::Object(_) => "an object".to_string(),
        Value::Array(_) | Value::Null => "an array".to_string(),
    };
    if v.is_null() {
        return Ok(None);
    }
    let key = match (kind, v) {
        (PayloadIndexKind::Keyword, Value::String(s)) => Some(s.as_bytes().to_vec()),
        (PayloadIndexKind::Integer, Value::Number(n)) => n.as_i64().map(int_key),
        (PayloadIndexKind::Float, Value::Number(n)) => n.as_f64().map(float_key),
        (PayloadIndexKind::Bool, Value::Bool(b)) => Some(vec![u8::from(*b)]),
        (PayloadIndexKind::Datetime, Value::String(s)) => parse_datetime(s).map(int_key),
        _ => None,
    };
    key.map(Some).ok_or_else(found)
}

/// The distinct keys `payload` holds under every indexed field, or the first mismatch.
pub(crate) fn index_keys(
    fields: &BTreeMap<String, PayloadIndexKind>,
    payload: &Map<String, Value>,
) -> Result<Vec<PostingKey>, EntityProblem> {
    let mut out = Vec::new();
    for (field, &kind) in fields {
        let start = out.len();
        for leaf in leaves(payload, field) {
            let value = leaf_key(kind, leaf).map_err(|found| EntityProblem::PayloadIndexType {
                field: field.clone(),
                indexed: kind_name(kind),
                found,
            })?;
            out.push(PostingKey {
                field: field.clone(),
                value,
            });
        }
        out[start..].sort();
        let mut keep = start;
        for i in start..out.len() {
            if keep == start || out[keep - 1] != out[i] {
                out.swap(keep, i);
                keep += 1;
            }
        }
        out.truncate(keep);
    }
    Ok(out)
}

/// Encodes a postings row: `u16` field length, field, tag (0 null, 1 value), value, slot (BE).
pub(crate) fn encode_row(key: &PostingKey, slot: u32) -> Vec<u8> {
    let value = key.value.as_deref().unwrap_or(&[]);
    let mut out = Vec::with_capacity(2 + key.field.len() + 1 + value.len() + 4);
    out.extend_from_slice(&(key.field.len() as u16).to_be_bytes());
    out.extend_from_slice(key.field.as_bytes());
    out.push(u8::from(key.value.is_some()));
    out.extend_from_slice(value);
    out.extend_from_slice(&slot.to_be_bytes());
    out
}

/// The prefix shared by every row of `field`.
pub(crate) fn field_prefix(field: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + field.len());
    out.extend_from_slice(&(field.len() as u16).to_be_bytes());
    out.extend_from_slice(field.as_bytes());
    out
}

/// Decodes a postings row; `None` if it is malformed.
pub(crate) fn decode_row(row: &[u8]) -> Option<(PostingKey, u32)> {
    let len = u16::from_be_bytes([*row.first()?, *row.get(1)?]) as usize;
    let field = std::str::from_utf8(row.get(2..2 + len)?).ok()?.to_string();
    let tag = *row.get(2 + len)?;
    let rest = row.get(3 + len..)?;
    let split = rest.len().checked_sub(4)?;
    let slot = u32::from_be_bytes(rest[split..].try_into().ok()?);
    let value = match tag {
        0 if split == 0 => None,
        1 => Some(rest[..split].to_vec()),
        _ => return None,
    };
    Some((PostingKey { field, value }, slot))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_preserve_order() {
        let ints = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        assert!(ints.windows(2).all(|w| int_key(w[0]) < int_key(w[1])));
        let floats = [f64::MIN, -2.5, -1e-300, 0.0, 1e-300, 3.0, f64::MAX];
        assert!(floats.windows(2).all(|w| float_key(w[0]) < float_key(w[1])));
        assert_eq!(float_key(-0.0), float_key(0.0));
    }

    #[test]
    fn extraction_and_rows() {
        let mut fields = BTreeMap::new();
        fields.insert("tags".to_string(), PayloadIndexKind::Keyword);
        fields.insert("n".to_string(), PayloadIndexKind::Integer);
        let p = json!({"tags": ["a", "b", "a", null], "n": 3});
        let keys = index_keys(&fields, p.as_object().unwrap()).unwrap();
        assert_eq!(keys.len(), 4, "{keys:?}");
        for k in &keys {
            assert_eq!(decode_row(&encode_row(k, 77)), Some((k.clone(), 77)));
        }
        let bad = json!({"n": 2.5});
        assert!(matches!(
            index_keys(&fields, bad.as_object().unwrap()),
            Err(EntityProblem::PayloadIndexType { .. })
        ));
        assert_eq!(decode_row(&[0, 9, 1]), None);
    }
}
