//! Filters over entity payloads: the types, their JSON form, and the reference semantics.
//!
//! A [`Filter`] has three clause lists, as in Qdrant: every `must` condition holds, at least one
//! `should` condition holds (when there are any), and no `must_not` condition holds. Conditions
//! test a payload field named by a dotted key (`"a.b"` walks into objects; arrays anywhere on
//! the way are flattened, so a condition on an array field holds when it holds for any element),
//! test the entity id, or nest another filter.
//!
//! [`Filter::matches`] is the definition of what a filter means; the payload indexes and the
//! planner compute the same answer faster, and the tests hold them to it.
//!
//! # JSON form (follows Qdrant's filter JSON)
//! ```
//! use hybridb::Filter;
//! let f: Filter = serde_json::from_value(serde_json::json!({
//!     "must": [
//!         {"key": "lang", "match": {"value": "en"}},
//!         {"key": "year", "range": {"gte": 2020}},
//!         {"should": [{"key": "tag", "match": {"any": ["a", "b"]}}, {"is_null": {"key": "tag"}}]}
//!     ],
//!     "must_not": [{"has_id": ["0190a3e0-0000-7000-8000-000000000001"]}]
//! }))?;
//! assert_eq!(f.must.len(), 3);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Number, Value, json};

use crate::error::FilterProblem;
use crate::id::EntityId;

/// Deepest nesting of filters accepted.
pub const MAX_FILTER_DEPTH: usize = 32;
/// Most conditions accepted in one filter (counting nested ones and `any` values).
pub const MAX_FILTER_CONDITIONS: usize = 10_000;

/// A filter over entities: every `must` condition holds, at least one `should` condition holds
/// (when there are any), and no `must_not` condition holds.
///
/// Conditions name payload fields by dotted keys (`"a.b"`); arrays on the way are flattened, so
/// a condition on an array field holds when it holds for any element. [`Filter::matches`] is
/// the definition; the JSON form follows Qdrant's:
/// ```
/// use hybridb::Filter;
/// let f: Filter = serde_json::from_value(serde_json::json!({
///     "must": [{"key": "lang", "match": {"value": "en"}}, {"key": "year", "range": {"gte": 2020}}],
///     "must_not": [{"is_null": {"key": "title"}}]
/// }))?;
/// assert_eq!(f.must.len(), 2);
/// # Ok::<(), serde_json::Error>(())
/// ```
///
/// `Hash` agrees with `==`, so filters can key maps (the planner keys its per-filter
/// estimates and matching sets by them).
#[derive(Debug, Clone, Default, PartialEq, Hash)]
pub struct Filter {
    /// Conditions that must all hold.
    pub must: Vec<Condition>,
    /// Conditions of which at least one must hold (ignored when empty).
    pub should: Vec<Condition>,
    /// Conditions none of which may hold.
    pub must_not: Vec<Condition>,
}

/// One condition of a [`Filter`].
#[derive(Debug, Clone, PartialEq, Hash)]
#[non_exhaustive]
pub enum Condition {
    /// The field has this value (or, for arrays, an element equal to it).
    Match {
        /// Dotted field key.
        key: String,
        /// The value.
        value: MatchValue,
    },
    /// The field has one of these values.
    MatchAny {
        /// Dotted field key.
        key: String,
        /// The values.
        any: Vec<MatchValue>,
    },
    /// The field has a number (or an RFC 3339 datetime string) within the range.
    Range {
        /// Dotted field key.
        key: String,
        /// The bounds.
        range: Range,
    },
    /// The field has at least one non-null value.
    Exists {
        /// Dotted field key.
        key: String,
    },
    /// The field is missing, null, or an empty array (or an array of nulls).
    IsEmpty {
        /// Dotted field key.
        key: String,
    },
    /// The field holds `null` (or an array holding `null`).
    IsNull {
        /// Dotted field key.
        key: String,
    },
    /// The entity's id is one of these.
    HasId(BTreeSet<EntityId>),
    /// A nested filter.
    Nested(Box<Filter>),
}

/// A value to match: a string, an integer or a boolean.
#[derive(Debug, Clone, PartialEq, Hash)]
pub enum MatchValue {
    /// A string (keyword or datetime fields).
    Keyword(String),
    /// An integer (integer or float fields).
    Integer(i64),
    /// A boolean.
    Bool(bool),
}

/// Bounds of a range condition; at least one is set.
#[derive(Debug, Clone, Default, PartialEq, Hash)]
pub struct Range {
    /// Greater than.
    pub gt: Option<Bound>,
    /// Greater than or equal.
    pub gte: Option<Bound>,
    /// Less than.
    pub lt: Option<Bound>,
    /// Less than or equal.
    pub lte: Option<Bound>,
}

/// One bound of a [`Range`]. All bounds of a range are numbers or all are datetimes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// An integer, compared exactly with integer values.
    Integer(i64),
    /// A finite float.
    Float(f64),
    /// A datetime, as microseconds since the Unix epoch (UTC); written as an RFC 3339 string.
    Datetime(i64),
}

impl std::hash::Hash for Bound {
    /// Consistent with `==`: `0.0` and `-0.0` are equal, so floats hash their value with the
    /// zero's sign dropped.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match *self {
            Bound::Integer(i) | Bound::Datetime(i) => i.hash(state),
            Bound::Float(x) => (if x == 0.0 { 0 } else { x.to_bits() }).hash(state),
        }
    }
}

impl Filter {
    /// A filter that matches everything.
    pub fn new() -> Self {
        Filter::default()
    }

    /// Adds a `must` condition.
    pub fn must(mut self, c: Condition) -> Self {
        self.must.push(c);
        self
    }

    /// Adds a `should` condition.
    pub fn should(mut self, c: Condition) -> Self {
        self.should.push(c);
        self
    }

    /// Adds a `must_not` condition.
    pub fn must_not(mut self, c: Condition) -> Self {
        self.must_not.push(c);
        self
    }

    /// True when the filter has no conditions (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.should.is_empty() && self.must_not.is_empty()
    }

    /// Whether the entity `id` with `payload` passes the filter (the reference semantics).
    pub fn matches(&self, id: EntityId, payload: &Map<String, Value>) -> bool {
        self.must.iter().all(|c| c.matches(id, payload))
            && (self.should.is_empty() || self.should.iter().any(|c| c.matches(id, payload)))
            && !self.must_not.iter().any(|c| c.matches(id, payload))
    }

    /// Parses the JSON form, with errors that name the offending part (`must[1].range.gte`).
    pub fn from_json(value: &Value) -> Result<Filter, FilterProblem> {
        let mut budget = MAX_FILTER_CONDITIONS;
        parse_filter(value, "filter", 0, &mut budget)
    }

    /// The JSON form.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (name, list) in [
            ("must", &self.must),
            ("should", &self.should),
            ("must_not", &self.must_not),
        ] {
            if !list.is_empty() {
                m.insert(
                    name.into(),
                    Value::Array(list.iter().map(Condition::to_json).collect()),
                );
            }
        }
        Value::Object(m)
    }

    /// Every id named by a `has_id` condition.
    pub(crate) fn mentioned_ids(&self) -> BTreeSet<EntityId> {
        let mut out = BTreeSet::new();
        self.visit(&mut |c| {
            if let Condition::HasId(ids) = c {
                out.extend(ids.iter().copied());
            }
        });
        out
    }

    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Condition)) {
        for c in self.must.iter().chain(&self.should).chain(&self.must_not) {
            f(c);
            if let Condition::Nested(inner) = c {
                inner.visit(f);
            }
        }
    }
}

impl Condition {
    /// `key` equals `value`.
    pub fn matches_value(key: impl Into<String>, value: impl Into<MatchValue>) -> Self {
        Condition::Match {
            key: key.into(),
            value: value.into(),
        }
    }

    /// `key` equals one of `values`.
    pub fn matches_any<V: Into<MatchValue>>(
        key: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        Condition::MatchAny {
            key: key.into(),
            any: values.into_iter().map(Into::into).collect(),
        }
    }

    /// `key` lies within `range`.
    pub fn range(key: impl Into<String>, range: Range) -> Self {
        Condition::Range {
            key: key.into(),
            range,
        }
    }

    /// The entity id is one of `ids`.
    pub fn has_id(ids: impl IntoIterator<Item = EntityId>) -> Self {
        Condition::HasId(ids.into_iter().collect())
    }

    /// A nested filter.
    pub fn nested(filter: Filter) -> Self {
        Condition::Nested(Box::new(filter))
    }

    fn matches(&self, id: EntityId, payload: &Map<String, Value>) -> bool {
        match self {
            Condition::Match { key, value } => leaves(payload, key).any(|v| value.equals(v)),
            Condition::MatchAny { key, any } => {
                leaves(payload, key).any(|v| any.iter().any(|m| m.equals(v)))
            }
            Condition::Range { key, range } => leaves(payload, key).any(|v| range.contains(v)),
            Condition::Exists { key } => leaves(payload, key).any(|v| !v.is_null()),
            Condition::IsEmpty { key } => leaves(payload, key).all(Value::is_null),
            Condition::IsNull { key } => leaves(payload, key).any(Value::is_null),
            Condition::HasId(ids) => ids.contains(&id),
            Condition::Nested(f) => f.matches(id, payload),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Condition::Match { key, value } => {
                json!({"key": key, "match": {"value": value.to_json()}})
            }
            Condition::MatchAny { key, any } => json!({
                "key": key,
                "match": {"any": any.iter().map(MatchValue::to_json).collect::<Vec<_>>()}
            }),
            Condition::Range { key, range } => json!({"key": key, "range": range.to_json()}),
            Condition::Exists { key } => json!({"exists": {"key": key}}),
            Condition::IsEmpty { key } => json!({"is_empty": {"key": key}}),
            Condition::IsNull { key } => json!({"is_null": {"key": key}}),
            Condition::HasId(ids) => {
                json!({"has_id": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>()})
            }
            Condition::Nested(f) => f.to_json(),
        }
    }
}

impl MatchValue {
    /// Whether a payload leaf equals this value (numbers compare by value: `5` equals `5.0`).
    pub(crate) fn equals(&self, v: &Value) -> bool {
        match (self, v) {
            (MatchValue::Keyword(s), Value::String(t)) => s == t,
            (MatchValue::Bool(b), Value::Bool(c)) => b == c,
            (MatchValue::Integer(i), Value::Number(n)) => match n.as_i64() {
                Some(j) => *i == j,
                None => n.as_f64() == Some(*i as f64),
            },
            _ => false,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            MatchValue::Keyword(s) => Value::String(s.clone()),
            MatchValue::Integer(i) => Value::Number((*i).into()),
            MatchValue::Bool(b) => Value::Bool(*b),
        }
    }
}

impl From<&str> for MatchValue {
    fn from(s: &str) -> Self {
        MatchValue::Keyword(s.to_string())
    }
}
impl From<String> for MatchValue {
    fn from(s: String) -> Self {
        MatchValue::Keyword(s)
    }
}
impl From<i64> for MatchValue {
    fn from(i: i64) -> Self {
        MatchValue::Integer(i)
    }
}
impl From<bool> for MatchValue {
    fn from(b: bool) -> Self {
        MatchValue::Bool(b)
    }
}

impl Range {
    /// `>= lo` (numbers).
    pub fn gte(mut self, lo: impl Into<Bound>) -> Self {
        self.gte = Some(lo.into());
        self
    }
    /// `> lo`.
    pub fn gt(mut self, lo: impl Into<Bound>) -> Self {
        self.gt = Some(lo.into());
        self
    }
    /// `<= hi`.
    pub fn lte(mut self, hi: impl Into<Bound>) -> Self {
        self.lte = Some(hi.into());
        self
    }
    /// `< hi`.
    pub fn lt(mut self, hi: impl Into<Bound>) -> Self {
        self.lt = Some(hi.into());
        self
    }

    /// The bounds that are set, with their operator names.
    pub(crate) fn bounds(&self) -> impl Iterator<Item = (&'static str, Bound)> + '_ {
        [
            ("gt", self.gt),
            ("gte", self.gte),
            ("lt", self.lt),
            ("lte", self.lte),
        ]
        .into_iter()
        .filter_map(|(n, b)| b.map(|b| (n, b)))
    }

    /// Whether the bounds are datetimes (else numbers).
    pub(crate) fn is_datetime(&self) -> bool {
        self.bounds()
            .next()
            .is_some_and(|(_, b)| matches!(b, Bound::Datetime(_)))
    }

    /// Whether a payload leaf lies within the range.
    pub(crate) fn contains(&self, v: &Value) -> bool {
        let ord = |b: Bound| -> Option<std::cmp::Ordering> {
            match (b, v) {
                (Bound::Datetime(t), Value::String(s)) => {
                    crate::payload::parse_datetime(s).map(|x| x.cmp(&t))
                }
                (Bound::Integer(i), Value::Number(n)) => match n.as_i64() {
                    Some(j) => Some(j.cmp(&i)),
                    None => n.as_f64().and_then(|x| x.partial_cmp(&(i as f64))),
                },
                (Bound::Float(f), Value::Number(n)) => n.as_f64().and_then(|x| x.partial_cmp(&f)),
                _ => None,
            }
        };
        use std::cmp::Ordering::*;
        self.bounds().all(|(op, b)| {
            matches!(
                (op, ord(b)),
                ("gt", Some(Greater))
                    | ("gte", Some(Greater | Equal))
                    | ("lt", Some(Less))
                    | ("lte", Some(Less | Equal))
            )
        })
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (op, b) in self.bounds() {
            m.insert(op.into(), b.to_json());
        }
        Value::Object(m)
    }
}

impl Bound {
    fn to_json(self) -> Value {
        match self {
            Bound::Integer(i) => Value::Number(i.into()),
            Bound::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
            Bound::Datetime(t) => Value::String(crate::payload::format_datetime(t)),
        }
    }
}

impl From<i64> for Bound {
    fn from(i: i64) -> Self {
        Bound::Integer(i)
    }
}
impl From<f64> for Bound {
    fn from(f: f64) -> Self {
        Bound::Float(f)
    }
}

/// The leaf values at a dotted `key`: arrays are flattened at every level; a missing key has
/// none; `null` is a leaf.
pub(crate) fn leaves<'a>(
    payload: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a Value> {
    let mut out = Vec::new();
    let mut parts = key.split('.');
    if let Some(first) = parts.next()
        && let Some(v) = payload.get(first)
    {
        collect_leaves(v, &parts.collect::<Vec<_>>(), &mut out);
    }
    out.into_iter()
}

fn collect_leaves<'a>(v: &'a Value, rest: &[&str], out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => {
            for item in items {
                collect_leaves(item, rest, out);
            }
        }
        Value::Object(m) if !rest.is_empty() => {
            if let Some(next) = m.get(rest[0]) {
                collect_leaves(next, &rest[1..], out);
            }
        }
        _ if rest.is_empty() => out.push(v),
        _ => {}
    }
}

// ---- JSON parsing with precise errors ----

fn problem(path: &str, reason: impl Into<String>) -> FilterProblem {
    FilterProblem::Malformed {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn parse_filter(
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
        .any(|k| matches!(k.as_str(), "must" | "should" | "must_not"))
    {
        return Ok(Condition::Nested(Box::new(parse_filter(
            v,
            path,
            depth + 1,
            budget,
        )?)));
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
            None => Err(problem(path, "a \"key\" needs \"match\" or \"range\"")),
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

fn parse_key(v: Option<&Value>, path: &str) -> Result<String, FilterProblem> {
    match v {
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 256 && s.split('.').all(|p| !p.is_empty()) =>
        {
            Ok(s.clone())
        }
        Some(Value::String(_)) => Err(problem(
            path,
            "field key must be 1..=256 bytes of non-empty dot-separated parts",
        )),
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
                "expected {{\"value\": ...}} or {{\"any\": [...]}}, got {}",
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
    if let Some(any) = m.get("any") {
        only_keys(m, &["any"], path)?;
        let here = format!("{path}.any");
        let Value::Array(items) = any else {
            return Err(problem(&here, "expected a list of values"));
        };
        take_budget(budget, items.len())?;
        let any = items
            .iter()
            .enumerate()
            .map(|(i, x)| parse_match_value(x, &format!("{here}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Condition::MatchAny { key, any });
    }
    match m.keys().next() {
        Some(op) => Err(FilterProblem::UnknownOperator {
            path: path.to_string(),
            operator: op.clone(),
        }),
        None => Err(problem(path, "expected \"value\" or \"any\"")),
    }
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
                crate::payload::parse_datetime(s)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn f(v: Value) -> Filter {
        Filter::from_json(&v).unwrap()
    }

    fn hash_of(filter: &Filter) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        filter.hash(&mut h);
        h.finish()
    }

    #[test]
    fn hash_agrees_with_equality() {
        let a = f(
            json!({"must": [{"key": "x", "range": {"gte": 0.0, "lt": 2.5}}],
                         "should": [{"key": "t", "match": {"any": ["a", "b"]}}]}),
        );
        let b = f(
            json!({"must": [{"key": "x", "range": {"gte": -0.0, "lt": 2.5}}],
                         "should": [{"key": "t", "match": {"any": ["a", "b"]}}]}),
        );
        assert_eq!(a, b, "0.0 and -0.0 are the same bound");
        assert_eq!(hash_of(&a), hash_of(&b));
        let c = f(
            json!({"must": [{"key": "x", "range": {"gte": 0.0, "lt": 2.6}}],
                         "should": [{"key": "t", "match": {"any": ["a", "b"]}}]}),
        );
        assert_ne!(a, c);
        assert_ne!(hash_of(&a), hash_of(&c));
        let moved = f(
            json!({"should": [{"key": "x", "range": {"gte": 0.0, "lt": 2.5}}],
                             "must": [{"key": "t", "match": {"any": ["a", "b"]}}]}),
        );
        assert_ne!(
            hash_of(&a),
            hash_of(&moved),
            "the clause a condition sits in counts"
        );
    }

    #[test]
    fn semantics() {
        let id = EntityId::from_u128(1);
        let doc = p(json!({
            "lang": "en", "year": 2021, "score": 0.5, "tags": ["a", "b"],
            "nested": {"x": [{"y": 1}, {"y": 2}]}, "nothing": null, "empty": [],
            "at": "2024-05-01T12:00:00Z"
        }));
        let yes = [
            json!({"must": [{"key": "lang", "match": {"value": "en"}}]}),
            json!({"must": [{"key": "tags", "match": {"value": "b"}}]}),
            json!({"must": [{"key": "tags", "match": {"any": ["z", "a"]}}]}),
            json!({"must": [{"key": "year", "range": {"gte": 2021, "lt": 2022}}]}),
            json!({"must": [{"key": "score", "range": {"gt": 0.4}}]}),
            json!({"must": [{"key": "nested.x.y", "match": {"value": 2}}]}),
            json!({"must": [{"is_null": {"key": "nothing"}}, {"is_empty": {"key": "empty"}}]}),
            json!({"must": [{"is_empty": {"key": "missing"}}, {"exists": {"key": "lang"}}]}),
            json!({"must": [{"key": "at", "range": {"gte": "2024-01-01T00:00:00Z"}}]}),
            json!({"should": [{"key": "lang", "match": {"value": "de"}}, {"has_id": [id.to_string()]}]}),
            json!({"must_not": [{"must": [{"key": "lang", "match": {"value": "de"}}]}]}),
            json!({}),
        ];
        for y in yes {
            assert!(f(y.clone()).matches(id, &doc), "{y}");
        }
        let no = [
            json!({"must": [{"key": "lang", "match": {"value": "de"}}]}),
            json!({"must": [{"key": "year", "range": {"gt": 2021}}]}),
            json!({"must": [{"key": "lang", "range": {"gt": 1}}]}),
            json!({"must": [{"is_null": {"key": "lang"}}]}),
            json!({"must": [{"exists": {"key": "empty"}}]}),
            json!({"must_not": [{"key": "tags", "match": {"value": "a"}}]}),
            json!({"should": [{"key": "lang", "match": {"value": "de"}}]}),
            json!({"must": [{"key": "at", "range": {"lt": "2024-05-01T12:00:00Z"}}]}),
        ];
        for n in no {
            assert!(!f(n.clone()).matches(id, &doc), "{n}");
        }
    }

    #[test]
    fn round_trip() {
        let v = json!({
            "must": [{"key": "a", "match": {"value": "x"}}, {"key": "b", "range": {"gte": 1, "lt": 2.5}}],
            "should": [{"is_null": {"key": "c"}}, {"has_id": [EntityId::from_u128(7).to_string()]}],
            "must_not": [{"must": [{"key": "d", "match": {"any": [1, 2]}}]}]
        });
        let parsed = f(v.clone());
        assert_eq!(parsed.to_json(), v);
        let via_serde: Filter = serde_json::from_value(v).unwrap();
        assert_eq!(via_serde, parsed);
    }

    #[test]
    fn malformed_filters_name_the_place() {
        let cases = [
            (json!([]), "filter"),
            (json!({"bogus": []}), "bogus"),
            (json!({"must": 3}), "filter.must"),
            (json!({"must": [{"key": "a"}]}), "filter.must[0]"),
            (
                json!({"must": [{"key": "a", "match": {"text": "x"}}]}),
                "text",
            ),
            (
                json!({"must": [{"key": "a", "match": {"value": 1.5}}]}),
                "match.value",
            ),
            (json!({"must": [{"key": "a", "range": {}}]}), "range"),
            (
                json!({"must": [{"key": "a", "range": {"gt": 1, "lt": "2024-01-01T00:00:00Z"}}]}),
                "range",
            ),
            (
                json!({"must": [{"key": "a", "range": {"gt": "yesterday"}}]}),
                "range.gt",
            ),
            (
                json!({"must": [{"key": "a", "range": {"near": 1}}]}),
                "near",
            ),
            (json!({"must": [{"has_id": ["nope"]}]}), "has_id[0]"),
            (json!({"must": [{"key": "", "match": {"value": 1}}]}), "key"),
            (
                json!({"must": [{"key": "a..b", "match": {"value": 1}}]}),
                "key",
            ),
            (json!({"must": [{"is_null": "a"}]}), "is_null"),
            (
                json!({"must": [{"key": "a", "match": {"value": 1}, "range": {"gt": 1}}]}),
                "range",
            ),
            (json!({"must": [{}]}), "must[0]"),
        ];
        for (v, needle) in cases {
            let e = Filter::from_json(&v).expect_err(&v.to_string());
            assert!(e.to_string().contains(needle), "{v}: {e}");
        }
        let mut deep = json!({});
        for _ in 0..40 {
            deep = json!({"must": [deep]});
        }
        assert!(matches!(
            Filter::from_json(&deep),
            Err(FilterProblem::TooComplex { .. })
        ));
    }
}
