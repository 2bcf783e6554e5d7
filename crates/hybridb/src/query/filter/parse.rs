//! Reading a filter from Qdrant's filter JSON: every malformed part is refused with a
//! [`FilterProblem`] naming its path (`must[2].range.gte`), within depth and size limits
//! ([`MAX_FILTER_DEPTH`], [`MAX_FILTER_CONDITIONS`]), so a parsed filter always means what
//! [`Filter::matches`] says.

use crate::model::error::FilterProblem;
use crate::model::id::EntityId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

use super::*;

fn problem(path: &str, reason: impl Into<String>) -> FilterProblem {
    FilterProblem::Malformed {
        path: path.to_string(),
        reason: reason.into(),
    }
}

pub(super) fn parse_filter(
    v: &Value,
    path: &str,
    depth: usize,
    budget: &mut usize,
) -> Result<Filter, FilterProblem> {
    if depth > MAX_FILTER_DEPTH {
        return Err(FilterProblem::TooComplex {
            reason: format!("nested deeper than {MAX_FILTER_DEPTH} levels"),
        });
    }
    let Value::Object(m) = v else {
        return Err(problem(
            path,
            format!("expected an object, got {}", kind(v)),
        ));
    };
    let mut f = Filter::default();
    for (name, list) in m {
        if name == "min_should" {
            f.min_should = parse_min_should(list, &format!("{path}.min_should"), depth, budget)?;
            continue;
        }
        let target = match name.as_str() {
            "must" => &mut f.must,
            "should" => &mut f.should,
            "must_not" => &mut f.must_not,
            other => {
                return Err(FilterProblem::UnknownOperator {
                    path: path.to_string(),
                    operator: other.to_string(),
                });
            }
        };
        let here = format!("{path}.{name}");
        let items: Vec<&Value> = match list {
            Value::Array(a) => a.iter().collect(),
            // Qdrant accepts a single condition in place of a list.
            Value::Object(_) => vec![list],
            Value::Null => Vec::new(),
            other => {
                return Err(problem(
                    &here,
                    format!("expected a list of conditions, got {}", kind(other)),
                ));
            }
        };
        for (i, item) in items.into_iter().enumerate() {
            target.push(parse_condition(
                item,
                &format!("{here}[{i}]"),
                depth,
                budget,
            )?);
        }
    }
    Ok(f)
}

fn take_budget(budget: &mut usize, n: usize) -> Result<(), FilterProblem> {
    if *budget < n {
        return Err(FilterProblem::TooComplex {
            reason: format!("more than {MAX_FILTER_CONDITIONS} conditions"),
        });
    }
    *budget -= n;
    Ok(())
}

fn parse_condition(
    v: &Value,
    path: &str,
    depth: usize,
    budget: &mut usize,
) -> Result<Condition, FilterProblem> {
    take_budget(budget, 1)?;
    let Value::Object(m) = v else {
        return Err(problem(
            path,
            format!("expected a condition object, got {}", kind(v)),
        ));
    };
    if m.keys()
        .any(|k| matches!(k.as_str(), "must" | "should" | "must_not" | "min_should"))
    {
        return Ok(Condition::Nested(Box::new(parse_filter(
            v,
            path,
            depth + 1,
            budget,
        )?)));
    }
    if let Some(inner) = m.get("nested") {
        only_keys(m, &["nested"], path)?;
        return parse_nested(inner, &format!("{path}.nested"), depth, budget);
    }
    if let Some(ids) = m.get("has_id") {
        only_keys(m, &["has_id"], path)?;
        let here = format!("{path}.has_id");
        let Value::Array(items) = ids else {
            return Err(problem(&here, "expected a list of ids"));
        };
        take_budget(budget, items.len())?;
        let mut set = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let id = item
                .as_str()
                .and_then(|s| s.parse::<EntityId>().ok())
                .ok_or_else(|| problem(&format!("{here}[{i}]"), "expected a UUID string"))?;
            set.insert(id);
        }
        return Ok(Condition::HasId(set));
    }
    for op in ["is_null", "is_empty", "exists"] {
        if let Some(inner) = m.get(op) {
            only_keys(m, &[op], path)?;
            let here = format!("{path}.{op}");
            let key = match inner {
                Value::Object(im) => {
                    only_keys(im, &["key"], &here)?;
                    parse_key(im.get("key"), &format!("{here}.key"))?
                }
                other => {
                    return Err(problem(
                        &here,
                        format!("expected {{\"key\": ...}}, got {}", kind(other)),
                    ));
                }
            };
            return Ok(match op {
                "is_null" => Condition::IsNull { key },
                "is_empty" => Condition::IsEmpty { key },
                _ => Condition::Exists { key },
            });
        }
    }
    if m.contains_key("key") {
        let key = parse_key(m.get("key"), &format!("{path}.key"))?;
        if let Some(mv) = m.get("match") {
            only_keys(m, &["key", "match"], path)?;
            return parse_match(mv, key, &format!("{path}.match"), budget);
        }
        if let Some(c) = m.get("values_count") {
            only_keys(m, &["key", "values_count"], path)?;
            return Ok(Condition::ValuesCount {
                key,
                count: parse_count(c, &format!("{path}.values_count"))?,
            });
        }
        for (op, v) in m.iter().filter(|(k, _)| k.starts_with("geo_")) {
            if let Some(shape) = super::geo::parse(op, v, &format!("{path}.{op}")) {
                only_keys(m, &["key", op], path)?;
                return Ok(Condition::Geo { key, shape: shape? });
            }
        }
        if let Some(r) = m.get("range") {
            only_keys(m, &["key", "range"], path)?;
            return Ok(Condition::Range {
                key,
                range: parse_range(r, &format!("{path}.range"))?,
            });
        }
        return match m.keys().find(|k| *k != "key") {
            Some(op) => Err(FilterProblem::UnknownOperator {
                path: path.to_string(),
                operator: op.clone(),
            }),
            None => Err(FilterProblem::NoFieldCondition {
                path: path.to_string(),
            }),
        };
    }
    match m.keys().next() {
        Some(op) => Err(FilterProblem::UnknownOperator {
            path: path.to_string(),
            operator: op.clone(),
        }),
        None => Err(problem(path, "empty condition")),
    }
}

fn only_keys(m: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), FilterProblem> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(FilterProblem::UnknownOperator {
            path: path.to_string(),
            operator: extra.clone(),
        }),
        None => Ok(()),
    }
}

/// A filter key: dot-separated parts, each optionally followed by array steps
/// ([`crate::model::path`]). Qdrant's `part[]` ("every element of the array") is the same as
/// `part`, because a key already reaches into arrays at every level, so it is dropped; an
/// element index (`part[0]`) is kept and reaches only that element.
fn parse_key(v: Option<&Value>, path: &str) -> Result<String, FilterProblem> {
    use crate::model::path::{Step, parse_path};
    match v {
        Some(Value::String(s)) if s.len() <= 256 => {
            let steps = parse_path(s).map_err(|reason| {
                problem(
                    path,
                    format!(
                        "field key {s:?}: {reason} (keys are object keys joined by '.', each \
                         optionally followed by `[n]` for one array element or `[]` for every \
                         element)"
                    ),
                )
            })?;
            let mut key = String::with_capacity(s.len());
            for step in steps {
                match step {
                    Step::Key(k) => {
                        if !key.is_empty() {
                            key.push('.');
                        }
                        key.push_str(k);
                    }
                    Step::Index(i) => key.push_str(&format!("[{i}]")),
                    Step::Every => {}
                }
            }
            Ok(key)
        }
        Some(Value::String(_)) => Err(problem(path, "field key must be at most 256 bytes")),
        Some(other) => Err(problem(
            path,
            format!("expected a string, got {}", kind(other)),
        )),
        None => Err(problem(path, "missing")),
    }
}

fn parse_match_value(v: &Value, path: &str) -> Result<MatchValue, FilterProblem> {
    match v {
        Value::String(s) => Ok(MatchValue::Keyword(s.clone())),
        Value::Bool(b) => Ok(MatchValue::Bool(*b)),
        Value::Number(n) => n.as_i64().map(MatchValue::Integer).ok_or_else(|| {
            problem(
                path,
                "match values must be strings, integers or booleans (use a range for floats)",
            )
        }),
        other => Err(problem(
            path,
            format!(
                "match values must be strings, integers or booleans, got {}",
                kind(other)
            ),
        )),
    }
}

fn parse_match(
    v: &Value,
    key: String,
    path: &str,
    budget: &mut usize,
) -> Result<Condition, FilterProblem> {
    let Value::Object(m) = v else {
        return Err(problem(
            path,
            format!(
                "expected {{\"value\": ...}}, {{\"any\": [...]}}, {{\"except\": [...]}}, {{\"text\": ...}} or {{\"phrase\": ...}}, got {}",
                kind(v)
            ),
        ));
    };
    if let Some(value) = m.get("value") {
        only_keys(m, &["value"], path)?;
        return Ok(Condition::Match {
            key,
            value: parse_match_value(value, &format!("{path}.value"))?,
        });
    }
    for (op, phrase) in [("text", false), ("phrase", true)] {
        if let Some(text) = m.get(op) {
            only_keys(m, &[op], path)?;
            let here = format!("{path}.{op}");
            let Value::String(text) = text else {
                return Err(problem(
                    &here,
                    format!("expected a string, got {}", kind(text)),
                ));
            };
            if crate::index::text::Analyzer::default()
                .terms(text)
                .is_empty()
            {
                return Err(problem(&here, "the text has no words to match"));
            }
            return Ok(Condition::MatchText {
                key,
                text: text.clone(),
                phrase,
            });
        }
    }
    for op in ["any", "except"] {
        if let Some(list) = m.get(op) {
            only_keys(m, &[op], path)?;
            let here = format!("{path}.{op}");
            let Value::Array(items) = list else {
                return Err(problem(&here, "expected a list of values"));
            };
            take_budget(budget, items.len())?;
            let values = items
                .iter()
                .enumerate()
                .map(|(i, x)| parse_match_value(x, &format!("{here}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(if op == "any" {
                Condition::MatchAny { key, any: values }
            } else {
                Condition::MatchExcept {
                    key,
                    except: values,
                }
            });
        }
    }
    match m.keys().next() {
        Some(op) => Err(FilterProblem::UnknownOperator {
            path: path.to_string(),
            operator: op.clone(),
        }),
        None => Err(problem(
            path,
            "expected \"value\", \"any\", \"except\", \"text\" or \"phrase\"",
        )),
    }
}

/// `{"conditions": [...], "min_count": n}` (`null`: no clause).
fn parse_min_should(
    v: &Value,
    path: &str,
    depth: usize,
    budget: &mut usize,
) -> Result<Option<MinShould>, FilterProblem> {
    let m = match v {
        Value::Null => return Ok(None),
        Value::Object(m) => m,
        other => {
            return Err(problem(
                path,
                format!(
                    "expected {{\"conditions\": [...], \"min_count\": n}}, got {}",
                    kind(other)
                ),
            ));
        }
    };
    only_keys(m, &["conditions", "min_count"], path)?;
    let min_count = match m.get("min_count").and_then(Value::as_u64) {
        Some(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => {
            return Err(problem(
                &format!("{path}.min_count"),
                "expected an integer of at least 1",
            ));
        }
    };
    let here = format!("{path}.conditions");
    let Some(Value::Array(items)) = m.get("conditions") else {
        return Err(problem(&here, "expected a list of conditions"));
    };
    let conditions = items
        .iter()
        .enumerate()
        .map(|(i, c)| parse_condition(c, &format!("{here}[{i}]"), depth, budget))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(MinShould {
        conditions,
        min_count,
    }))
}

/// `{"key": "a.b", "filter": {...}}`: the filter holds for one object of the array at the key.
fn parse_nested(
    v: &Value,
    path: &str,
    depth: usize,
    budget: &mut usize,
) -> Result<Condition, FilterProblem> {
    let Value::Object(m) = v else {
        return Err(problem(
            path,
            format!(
                "expected {{\"key\": ..., \"filter\": {{...}}}}, got {}",
                kind(v)
            ),
        ));
    };
    only_keys(m, &["key", "filter"], path)?;
    let key = parse_key(m.get("key"), &format!("{path}.key"))?;
    let here = format!("{path}.filter");
    let filter = match m.get("filter") {
        Some(inner) => parse_filter(inner, &here, depth + 1, budget)?,
        None => return Err(problem(&here, "expected a filter")),
    };
    if !filter.mentioned_ids().is_empty() {
        return Err(problem(&here, "has_id is not supported inside nested"));
    }
    Ok(Condition::AnyElement {
        key,
        filter: Box::new(filter),
    })
}

/// Bounds of a `values_count` condition: non-negative integers, at least one.
fn parse_count(v: &Value, path: &str) -> Result<CountRange, FilterProblem> {
    let Value::Object(m) = v else {
        return Err(problem(
            path,
            format!("expected an object of bounds, got {}", kind(v)),
        ));
    };
    only_keys(m, &["gt", "gte", "lt", "lte"], path)?;
    let mut r = CountRange::default();
    for (name, slot) in [
        ("gt", &mut r.gt),
        ("gte", &mut r.gte),
        ("lt", &mut r.lt),
        ("lte", &mut r.lte),
    ] {
        match m.get(name) {
            None | Some(Value::Null) => {}
            Some(b) => {
                *slot = Some(b.as_u64().ok_or_else(|| {
                    problem(
                        &format!("{path}.{name}"),
                        format!("expected a non-negative integer, got {b}"),
                    )
                })?);
            }
        }
    }
    if r == CountRange::default() {
        return Err(problem(path, "expected at least one bound"));
    }
    Ok(r)
}

fn parse_range(v: &Value, path: &str) -> Result<Range, FilterProblem> {
    let Value::Object(m) = v else {
        return Err(problem(
            path,
            format!("expected an object of bounds, got {}", kind(v)),
        ));
    };
    let mut r = Range::default();
    for (op, b) in m {
        let here = format!("{path}.{op}");
        let bound = match b {
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Bound::Integer(i),
                (None, Some(f)) if f.is_finite() => Bound::Float(f),
                _ => return Err(problem(&here, "number out of range")),
            },
            Value::String(s) => Bound::Datetime(
                crate::query::datetime::parse_datetime(s)
                    .ok_or_else(|| problem(&here, format!("{s:?} is not an RFC 3339 datetime")))?,
            ),
            Value::Null => continue,
            other => {
                return Err(problem(
                    &here,
                    format!(
                        "expected a number or an RFC 3339 datetime string, got {}",
                        kind(other)
                    ),
                ));
            }
        };
        let slot = match op.as_str() {
            "gt" => &mut r.gt,
            "gte" => &mut r.gte,
            "lt" => &mut r.lt,
            "lte" => &mut r.lte,
            other => {
                return Err(FilterProblem::UnknownOperator {
                    path: path.to_string(),
                    operator: other.to_string(),
                });
            }
        };
        *slot = Some(bound);
    }
    let kinds: Vec<bool> = r
        .bounds()
        .map(|(_, b)| matches!(b, Bound::Datetime(_)))
        .collect();
    match kinds.split_first() {
        None => Err(problem(
            path,
            "a range needs at least one of gt, gte, lt, lte",
        )),
        Some((first, rest)) if rest.iter().any(|k| k != first) => {
            Err(problem(path, "bounds must be all numbers or all datetimes"))
        }
        Some(_) => Ok(r),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Serialize for Filter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Filter::from_json(&v).map_err(serde::de::Error::custom)
    }
}
