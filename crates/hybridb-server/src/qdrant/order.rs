//! Qdrant's `order_by` (a `query` kind, and a `scroll` option) and `sample: random`.
//!
//! `order_by` (`"key"` or `{"key", "direction": "asc" | "desc", "start_from"}`) needs a
//! range-capable payload index on the key (`integer`, `float` or `datetime`), as Qdrant does,
//! and answers the points matching the filter by the key's values: one entry per distinct
//! value of a point (a point whose field holds several values appears once per value, as in
//! Qdrant), points without a value left out, ties by id (in the direction's order);
//! `start_from` (a number, or a datetime for a `datetime` key) keeps values at least it
//! (`asc`) or at most it (`desc`). Each entry carries its `order_value` (an integer for an
//! `integer` index, microseconds since the epoch for a `datetime` one) and score 1.0.
//!
//! Cost: one pass over the records matching the filter, keeping the best `limit` entries
//! (memory O(limit)); the payload index's ordered keys are not walked yet.
//!
//! `sample: random` answers up to `limit` points matching the filter, drawn uniformly
//! (reservoir sampling over one pass of the matching records) in random order, score 1.0.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use hybridb::{Collection, EntityId, Filter, PayloadIndexKind};
use serde::Serialize;
use serde_json::{Map, Value};

use super::convert::bad;
use super::recommend::scan;
use crate::error::{ApiError, ErrorCode};

/// The value a point was ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OrderValue {
    /// From an `integer` index.
    Int(i64),
    /// From a `float` index.
    Float(f64),
}

/// Where an `order_by` starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Start {
    /// A number (for a `datetime` key: microseconds since the epoch).
    Number(f64),
    /// An RFC 3339 datetime.
    Datetime(String),
}

impl OrderValue {
    fn as_f64(self) -> f64 {
        match self {
            OrderValue::Int(i) => i as f64,
            OrderValue::Float(f) => f,
        }
    }
}

/// A checked `order_by`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderBy {
    /// The payload key.
    pub(crate) key: String,
    /// Largest first.
    pub(crate) desc: bool,
    /// Values from this one on (in the direction's order).
    pub(crate) start_from: Option<Start>,
}

/// Reads `order_by`: a key, or `{"key", "direction"?, "start_from"?}`.
pub(crate) fn order_by_of(v: &Value, at: &str) -> Result<OrderBy, ApiError> {
    let m = match v {
        Value::String(key) => {
            return Ok(OrderBy {
                key: key.clone(),
                desc: false,
                start_from: None,
            });
        }
        Value::Object(m) => m,
        _ => {
            return Err(bad(
                at,
                "Expected a string, or an object with a key, direction and/or start_from",
            ));
        }
    };
    let key = match m.get("key") {
        Some(Value::String(k)) => k.clone(),
        _ => return Err(bad(&format!("{at}.key"), "expected a payload key")),
    };
    let desc = match m.get("direction") {
        None | Some(Value::Null) => false,
        Some(d) => match d.as_str() {
            Some("asc") => false,
            Some("desc") => true,
            _ => {
                return Err(bad(
                    &format!("{at}.direction"),
                    "expected \"asc\" or \"desc\"",
                ));
            }
        },
    };
    let start_from = match m.get("start_from") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64().map(Start::Number),
        Some(Value::String(s)) => Some(Start::Datetime(s.clone())),
        Some(_) => {
            return Err(bad(
                &format!("{at}.start_from"),
                "expected a number or a datetime",
            ));
        }
    };
    Ok(OrderBy {
        key,
        desc,
        start_from,
    })
}

/// Reads `sample`: only `"random"`.
pub(crate) fn sample_of(v: &Value, at: &str) -> Result<(), ApiError> {
    match v.as_str() {
        Some("random") => Ok(()),
        _ => Err(bad(&format!("{at}.sample"), "expected \"random\"")),
    }
}

/// The index kind of the key, if it can order (else Qdrant's error).
fn range_index(c: &Collection, key: &str) -> Result<PayloadIndexKind, ApiError> {
    match c.config().payload_indexes.get(key).copied() {
        Some(
            k @ (PayloadIndexKind::Integer | PayloadIndexKind::Float | PayloadIndexKind::Datetime),
        ) => Ok(k),
        _ => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "No range index for `order_by` key: `{key}`. Please create one to use \
                 `order_by`. Check https://qdrant.tech/documentation/concepts/indexing/#payload-index \
                 to see which payload schemas support Range conditions"
            ),
        )),
    }
}

/// The values at a dotted `key` (arrays flattened at every step; `a[]` is `a`).
fn values_at<'a>(payload: &'a Map<String, Value>, key: &str, out: &mut Vec<&'a Value>) {
    fn walk<'a>(v: &'a Value, rest: &[&str], out: &mut Vec<&'a Value>) {
        match (v, rest.split_first()) {
            (Value::Array(items), _) => items.iter().for_each(|x| walk(x, rest, out)),
            (_, None) => out.push(v),
            (Value::Object(m), Some((first, rest))) => {
                if let Some(x) = m.get(*first) {
                    walk(x, rest, out);
                }
            }
            _ => {}
        }
    }
    let parts: Vec<&str> = key.split('.').map(|p| p.trim_end_matches("[]")).collect();
    if let Some((first, rest)) = parts.split_first()
        && let Some(v) = payload.get(*first)
    {
        walk(v, rest, out);
    }
}

/// The best `k` entries `(value, id)` of the points matching `f` by `ob`, best first.
pub(crate) fn ordered(
    c: &Collection,
    ob: &OrderBy,
    f: Filter,
    k: usize,
) -> Result<Vec<(OrderValue, EntityId)>, ApiError> {
    let kind = range_index(c, &ob.key)?;
    let start = match &ob.start_from {
        None => None,
        Some(Start::Number(x)) => Some(*x),
        Some(Start::Datetime(s)) if kind == PayloadIndexKind::Datetime => Some(
            hybridb::parse_datetime(s)
                .ok_or_else(|| bad("order_by.start_from", "expected an RFC 3339 datetime"))?
                as f64,
        ),
        Some(Start::Datetime(_)) => {
            return Err(bad(
                "order_by.start_from",
                "expected a number (a datetime orders only a datetime key)",
            ));
        }
    };
    let cmp = |a: &(OrderValue, EntityId), b: &(OrderValue, EntityId)| {
        let o = a.0.as_f64().total_cmp(&b.0.as_f64()).then(a.1.cmp(&b.1));
        if ob.desc { o.reverse() } else { o }
    };
    let mut best: Vec<(OrderValue, EntityId)> = Vec::new();
    scan(c, f, |r| {
        let mut values = Vec::new();
        values_at(&r.payload, &ob.key, &mut values);
        let mut mine: Vec<OrderValue> = values
            .iter()
            .filter_map(|v| match kind {
                PayloadIndexKind::Integer => v.as_i64().map(OrderValue::Int),
                PayloadIndexKind::Datetime => v
                    .as_str()
                    .and_then(hybridb::parse_datetime)
                    .map(OrderValue::Int),
                _ => v.as_f64().map(OrderValue::Float),
            })
            .filter(|v| {
                start.is_none_or(|s| {
                    if ob.desc {
                        v.as_f64() <= s
                    } else {
                        v.as_f64() >= s
                    }
                })
            })
            .collect();
        mine.sort_by(|a, b| a.as_f64().total_cmp(&b.as_f64()));
        mine.dedup_by(|a, b| a.as_f64() == b.as_f64());
        best.extend(mine.into_iter().map(|v| (v, r.id)));
        if best.len() > 2 * k + 1024 {
            best.sort_by(cmp);
            best.truncate(k);
        }
    })?;
    best.sort_by(cmp);
    best.truncate(k);
    Ok(best)
}

/// Up to `k` ids of the points matching `f`, drawn uniformly, in random order.
pub(crate) fn sample(c: &Collection, f: Filter, k: usize) -> Result<Vec<EntityId>, ApiError> {
    let mut rng = Rng::new();
    let mut picked: Vec<EntityId> = Vec::new();
    let mut seen = 0u64;
    scan(c, f, |r| {
        seen += 1;
        if picked.len() < k {
            picked.push(r.id);
        } else {
            let j = rng.below(seen);
            if let Ok(j) = usize::try_from(j)
                && j < k
            {
                picked[j] = r.id;
            }
        }
    })?;
    for i in (1..picked.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        picked.swap(i, j);
    }
    Ok(picked)
}

/// A small xorshift generator seeded from the process's random hasher keys.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0x9e37_79b9_7f4a_7c15);
        Rng(h.finish() | 1)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_flatten_arrays_and_nested_keys() {
        let p = json!({"a": [{"b": 1}, {"b": [2, 3]}], "c": 4.5});
        let p = p.as_object().unwrap();
        let mut out = Vec::new();
        values_at(p, "a[].b", &mut out);
        assert_eq!(out, vec![&json!(1), &json!(2), &json!(3)]);
        out.clear();
        values_at(p, "c", &mut out);
        assert_eq!(out, vec![&json!(4.5)]);
    }

    #[test]
    fn order_by_forms() {
        assert_eq!(
            order_by_of(&json!("price"), "query.order_by").unwrap(),
            OrderBy {
                key: "price".into(),
                desc: false,
                start_from: None
            }
        );
        let o = order_by_of(
            &json!({"key": "p", "direction": "desc", "start_from": 3}),
            "q",
        )
        .unwrap();
        assert!(o.desc && o.start_from == Some(Start::Number(3.0)));
        let o = order_by_of(&json!({"key": "d", "start_from": "2024-01-01"}), "q").unwrap();
        assert_eq!(o.start_from, Some(Start::Datetime("2024-01-01".into())));
        assert!(order_by_of(&json!({"key": "p", "direction": "up"}), "q").is_err());
        assert!(order_by_of(&json!(3), "q").is_err());
        assert!(order_by_of(&json!({"key": "p", "start_from": true}), "q").is_err());
    }

    #[test]
    fn rng_stays_in_range() {
        let mut r = Rng::new();
        assert!((0..1000).all(|_| r.below(7) < 7));
    }
}
