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

use serde_json::{Map, Number, Value, json};

use crate::model::error::FilterProblem;
use crate::model::id::EntityId;

mod geo;
mod parse;
#[cfg(test)]
mod tests;

pub use geo::{GeoPoint, GeoShape};
use parse::parse_filter;

use crate::index::text::Analyzer;

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
    /// At least `min_count` of these conditions hold (Qdrant's `min_should`); `None`: no such
    /// clause.
    pub min_should: Option<MinShould>,
}

/// A clause of a [`Filter`] that holds when at least `min_count` of its conditions hold.
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct MinShould {
    /// The conditions counted.
    pub conditions: Vec<Condition>,
    /// How many must hold (at least 1; more than there are conditions never holds).
    pub min_count: usize,
}

/// Bounds on how many values a field holds ([`Condition::ValuesCount`]); unset bounds do not
/// constrain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CountRange {
    /// Greater than.
    pub gt: Option<u64>,
    /// Greater than or equal.
    pub gte: Option<u64>,
    /// Less than.
    pub lt: Option<u64>,
    /// Less than or equal.
    pub lte: Option<u64>,
}

impl CountRange {
    /// Whether `n` lies within every set bound.
    pub fn contains(&self, n: u64) -> bool {
        self.gt.is_none_or(|b| n > b)
            && self.gte.is_none_or(|b| n >= b)
            && self.lt.is_none_or(|b| n < b)
            && self.lte.is_none_or(|b| n <= b)
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (name, b) in [
            ("gt", self.gt),
            ("gte", self.gte),
            ("lt", self.lt),
            ("lte", self.lte),
        ] {
            if let Some(b) = b {
                m.insert(name.into(), b.into());
            }
        }
        Value::Object(m)
    }
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
    /// The field holds a string containing every word of `text` (`phrase`: the words of
    /// `text` consecutively, in order). Words are those of the default
    /// [`crate::index::text::Analyzer`] (Unicode words, lowercased). Checked on payloads; a text
    /// index will answer it from postings.
    MatchText {
        /// Dotted field key.
        key: String,
        /// The words to find.
        text: String,
        /// Whether they must stand together, in order.
        phrase: bool,
    },
    /// The field has one of these values.
    MatchAny {
        /// Dotted field key.
        key: String,
        /// The values.
        any: Vec<MatchValue>,
    },
    /// The field has a non-null value equal to none of these (Qdrant's `except`, a `NOT IN`):
    /// it holds when at least one of the field's values is not in the list, so a missing or
    /// null field never matches, and a value of another type than the listed ones does.
    MatchExcept {
        /// Dotted field key.
        key: String,
        /// The values the field's value must differ from.
        except: Vec<MatchValue>,
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
    /// How many values the field holds lies within the bounds: an array counts its elements,
    /// `null` and a missing field count 0, any other value 1. With several values on the path
    /// (arrays of objects on the way), one of them must fit.
    ValuesCount {
        /// Dotted field key.
        key: String,
        /// The bounds.
        count: CountRange,
    },
    /// Some object in the array at `key` satisfies `filter` on its own (Qdrant's `nested`
    /// condition): keys inside `filter` are relative to the element, so two conditions must
    /// hold for the same element rather than for any two. `has_id` is refused inside.
    AnyElement {
        /// Dotted key of the array of objects.
        key: String,
        /// The filter each element is tested against.
        filter: Box<Filter>,
    },
    /// The field holds a geo point (`{"lon", "lat"}`, or an array of them) within the area
    /// (Qdrant's `geo_radius`, `geo_bounding_box`, `geo_polygon`; see [`GeoShape`]).
    Geo {
        /// Dotted field key.
        key: String,
        /// The area.
        shape: GeoShape,
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

    /// Adds a `min_should` clause: at least `min_count` of `conditions` hold.
    pub fn min_should(mut self, conditions: Vec<Condition>, min_count: usize) -> Self {
        self.min_should = Some(MinShould {
            conditions,
            min_count,
        });
        self
    }

    /// True when the filter has no conditions (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.must.is_empty()
            && self.should.is_empty()
            && self.must_not.is_empty()
            && self.min_should.is_none()
    }

    /// Whether the entity `id` with `payload` passes the filter (the reference semantics).
    pub fn matches(&self, id: EntityId, payload: &Map<String, Value>) -> bool {
        self.must.iter().all(|c| c.matches(id, payload))
            && (self.should.is_empty() || self.should.iter().any(|c| c.matches(id, payload)))
            && !self.must_not.iter().any(|c| c.matches(id, payload))
            && self.min_should.as_ref().is_none_or(|m| {
                m.conditions
                    .iter()
                    .filter(|c| c.matches(id, payload))
                    .take(m.min_count)
                    .count()
                    == m.min_count
            })
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
        if let Some(ms) = &self.min_should {
            m.insert(
                "min_should".into(),
                json!({
                    "conditions": ms.conditions.iter().map(Condition::to_json).collect::<Vec<_>>(),
                    "min_count": ms.min_count,
                }),
            );
        }
        Value::Object(m)
    }

    /// Every condition of the filter's own clauses (not those of nested filters).
    pub(crate) fn conditions(&self) -> impl Iterator<Item = &Condition> {
        self.must
            .iter()
            .chain(&self.should)
            .chain(&self.must_not)
            .chain(self.min_should.iter().flat_map(|m| &m.conditions))
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
        for c in self.conditions() {
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

    /// `key` has a non-null value equal to none of `values` (see [`Condition::MatchExcept`]).
    pub fn matches_except<V: Into<MatchValue>>(
        key: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        Condition::MatchExcept {
            key: key.into(),
            except: values.into_iter().map(Into::into).collect(),
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
            Condition::MatchText { key, text, phrase } => {
                let want = Analyzer::default().terms(text);
                leaves(payload, key).any(|v| {
                    v.as_str().is_some_and(|s| {
                        text_matches(&Analyzer::default().terms(s), &want, *phrase)
                    })
                })
            }
            Condition::MatchAny { key, any } => {
                leaves(payload, key).any(|v| any.iter().any(|m| m.equals(v)))
            }
            Condition::MatchExcept { key, except } => {
                leaves(payload, key).any(|v| !v.is_null() && !except.iter().any(|m| m.equals(v)))
            }
            Condition::Range { key, range } => leaves(payload, key).any(|v| range.contains(v)),
            Condition::Exists { key } => leaves(payload, key).any(|v| !v.is_null()),
            Condition::IsEmpty { key } => leaves(payload, key).all(Value::is_null),
            Condition::IsNull { key } => leaves(payload, key).any(Value::is_null),
            Condition::ValuesCount { key, count } => {
                let mut values = path_values(payload, key).peekable();
                if values.peek().is_none() {
                    return count.contains(0);
                }
                values.any(|v| {
                    count.contains(match v {
                        Value::Null => 0,
                        Value::Array(a) => a.len() as u64,
                        _ => 1,
                    })
                })
            }
            Condition::AnyElement { key, filter } => leaves(payload, key)
                .filter_map(Value::as_object)
                .any(|element| filter.matches(id, element)),
            Condition::Geo { key, shape } => leaves(payload, key).any(|v| shape.matches_value(v)),
            Condition::HasId(ids) => ids.contains(&id),
            Condition::Nested(f) => f.matches(id, payload),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Condition::Match { key, value } => {
                json!({"key": key, "match": {"value": value.to_json()}})
            }
            Condition::MatchText { key, text, phrase } => {
                let op = if *phrase { "phrase" } else { "text" };
                json!({"key": key, "match": {op: text}})
            }
            Condition::MatchAny { key, any } => json!({
                "key": key,
                "match": {"any": any.iter().map(MatchValue::to_json).collect::<Vec<_>>()}
            }),
            Condition::MatchExcept { key, except } => json!({
                "key": key,
                "match": {"except": except.iter().map(MatchValue::to_json).collect::<Vec<_>>()}
            }),
            Condition::Range { key, range } => json!({"key": key, "range": range.to_json()}),
            Condition::Exists { key } => json!({"exists": {"key": key}}),
            Condition::IsEmpty { key } => json!({"is_empty": {"key": key}}),
            Condition::IsNull { key } => json!({"is_null": {"key": key}}),
            Condition::ValuesCount { key, count } => {
                json!({"key": key, "values_count": count.to_json()})
            }
            Condition::AnyElement { key, filter } => {
                json!({"nested": {"key": key, "filter": filter.to_json()}})
            }
            Condition::Geo { key, shape } => json!({"key": key, shape.operator(): shape.to_json()}),
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
                    crate::query::datetime::parse_datetime(s).map(|x| x.cmp(&t))
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
            Bound::Datetime(t) => Value::String(crate::query::datetime::format_datetime(t)),
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
/// none; `null` is a leaf. A part `a[n]` reaches only element `n` of the array at `a`.
pub(crate) fn leaves<'a>(
    payload: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a Value> {
    let mut out = Vec::new();
    if key.contains('[') {
        walk_steps(payload, key, true, &mut out);
        return out.into_iter();
    }
    let mut parts = key.split('.');
    if let Some(first) = parts.next()
        && let Some(v) = payload.get(first)
    {
        collect_leaves(v, &parts.collect::<Vec<_>>(), &mut out);
    }
    out.into_iter()
}

/// The values at the end of `key`'s path, arrays there kept whole (arrays on the way are
/// flattened, as for [`leaves`]).
fn path_values<'a>(payload: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a Value> {
    fn walk<'a>(v: &'a Value, rest: &[&str], out: &mut Vec<&'a Value>) {
        match (v, rest.split_first()) {
            (_, None) => out.push(v),
            (Value::Array(items), Some(_)) => {
                for item in items {
                    walk(item, rest, out);
                }
            }
            (Value::Object(m), Some((first, tail))) => {
                if let Some(next) = m.get(*first) {
                    walk(next, tail, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if key.contains('[') {
        walk_steps(payload, key, false, &mut out);
        return out.into_iter();
    }
    let mut parts = key.split('.');
    if let Some(first) = parts.next()
        && let Some(v) = payload.get(first)
    {
        walk(v, &parts.collect::<Vec<_>>(), &mut out);
    }
    out.into_iter()
}

/// [`leaves`] (`flatten_end`) or [`path_values`] for a key with element indexes (`a[0].b`):
/// a key step flattens arrays as everywhere, an index step takes one element of an array.
fn walk_steps<'a>(
    payload: &'a Map<String, Value>,
    key: &str,
    flatten_end: bool,
    out: &mut Vec<&'a Value>,
) {
    use crate::model::path::{Step, parse_path};
    fn walk<'a>(v: &'a Value, rest: &[Step<'_>], flatten_end: bool, out: &mut Vec<&'a Value>) {
        match (rest.split_first(), v) {
            (None, Value::Array(items)) if flatten_end => {
                for item in items {
                    walk(item, rest, flatten_end, out);
                }
            }
            (None, _) => out.push(v),
            (Some((Step::Key(_) | Step::Every, _)), Value::Array(items)) => {
                for item in items {
                    walk(item, rest, flatten_end, out);
                }
            }
            (Some((Step::Key(k), tail)), Value::Object(m)) => {
                if let Some(next) = m.get(*k) {
                    walk(next, tail, flatten_end, out);
                }
            }
            (Some((Step::Every, tail)), _) => walk(v, tail, flatten_end, out),
            (Some((Step::Index(i), tail)), Value::Array(items)) => {
                if let Some(next) = items.get(*i) {
                    walk(next, tail, flatten_end, out);
                }
            }
            _ => {}
        }
    }
    // Keys reach here parsed (`parse_key`); a malformed one names nothing.
    if let Ok(steps) = parse_path(key)
        && let Some((Step::Key(first), rest)) = steps.split_first()
        && let Some(v) = payload.get(*first)
    {
        walk(v, rest, flatten_end, out);
    }
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

/// Whether the analyzed words `have` hold every word of `want` (or, for a phrase, `want` as a
/// consecutive run). An empty `want` matches nothing (the parser refuses it).
fn text_matches(have: &[String], want: &[String], phrase: bool) -> bool {
    if want.is_empty() {
        return false;
    }
    if phrase {
        have.windows(want.len()).any(|w| w == want)
    } else {
        want.iter().all(|t| have.contains(t))
    }
}
