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

pub(crate) mod admin;
pub(crate) mod eval;
pub(crate) mod postings;

use std::collections::BTreeMap;

use redb::TableDefinition;
use serde_json::{Map, Value};

use crate::config::PayloadIndexKind;
use crate::error::EntityProblem;
use crate::filter::leaves;

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

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Parses an RFC 3339 datetime (`2024-05-01T12:00:00.5+02:00`, `Z` for UTC; a bare date means
/// midnight UTC) into microseconds since the Unix epoch. A small exact grammar, so no date
/// crate is needed for it.
pub(crate) fn parse_datetime(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(1..=12).contains(&mo) {
        return None;
    }
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if d < 1 || d > month_days[(mo - 1) as usize] {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if b.len() == 10 {
        return Some(days * 86_400_000_000);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..6 {
            micros *= 10;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') if b.len() == i + 1 => 0,
        Some(&sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = (oh * 60 + om) * 60;
            if sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset;
    secs.checked_mul(1_000_000)?.checked_add(micros)
}

/// Formats microseconds since the epoch as RFC 3339 in UTC.
pub(crate) fn format_datetime(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if frac == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("1970-01-01"), Some(0));
        assert_eq!(
            parse_datetime("2024-05-01T12:00:00.5+02:00"),
            Some(parse_datetime("2024-05-01T10:00:00.500Z").unwrap())
        );
        assert_eq!(parse_datetime("1969-12-31T23:59:59Z"), Some(-1_000_000));
        for bad in [
            "",
            "2024",
            "2024-13-01",
            "2023-02-29",
            "2024-05-01T25:00:00Z",
            "2024-05-01T12:00:00",
            "2024-05-01T12:00:00.Z",
            "2024-05-01X12:00:00Z",
            "2024-05-01T12:00:00+2:00",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        for t in [
            0,
            1,
            -1,
            1_714_564_800_000_000,
            -62_135_596_800_000_000,
            253_402_300_799_999_999,
        ] {
            assert_eq!(parse_datetime(&format_datetime(t)), Some(t), "{t}");
        }
        assert!(parse_datetime("2024-02-29T00:00:00Z").is_some());
    }

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
