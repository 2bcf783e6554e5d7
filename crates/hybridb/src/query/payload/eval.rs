//! Evaluating a [`Filter`] over the payload indexes into a set of slots.
//!
//! The result is *exact* when every condition could be answered from the indexes (indexed
//! fields and `has_id`); otherwise it is a superset of the matching slots, which the caller
//! narrows by reading payloads ([`Filter::matches`] decides). The rules that keep the superset
//! sound: `must` intersects and `should` unites supersets; `must_not` subtracts only exact sets.

use std::collections::HashMap;
use std::ops::Bound as KeyBound;

use crate::index::bitset::SlotBitset;
use crate::index::text::Tokenizer;
use crate::model::config::PayloadIndexKind;
use crate::model::error::FilterProblem;
use crate::model::id::EntityId;
use crate::query::filter::{Bound, Condition, Filter, MatchValue, Range};
use crate::query::payload::postings::{FieldPostings, PayloadIndex};
use crate::query::payload::{float_key, int_key, kind_name};
use crate::query::state::text::TextIndexes;

/// Slots that (may) match.
#[derive(Debug, Clone)]
pub(crate) struct Evaluated {
    pub bits: SlotBitset,
    /// `bits` is exactly the matching slots of the universe.
    pub exact: bool,
}

/// Evaluation context: the postings, the text indexes, the universe (live slots) and the
/// slots of the ids that `has_id` conditions name.
pub(crate) struct Context<'a> {
    pub index: &'a PayloadIndex,
    pub texts: &'a TextIndexes,
    pub universe: &'a SlotBitset,
    pub id_slots: &'a HashMap<EntityId, u32>,
}

/// Checks that every condition on an indexed field fits the field's type.
pub(crate) fn check(filter: &Filter, index: &PayloadIndex) -> Result<(), FilterProblem> {
    let mut sink = SlotBitset::new();
    for c in filter.conditions() {
        match c {
            Condition::Nested(f) => check(f, index)?,
            Condition::Match { key, .. }
            | Condition::MatchAny { key, .. }
            | Condition::Range { key, .. } => {
                if let Some(f) = index.field(key) {
                    field_condition(f, key, c, &mut sink, true)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Evaluates `filter` within `cx.universe`.
pub(crate) fn evaluate(filter: &Filter, cx: &Context<'_>) -> Result<Evaluated, FilterProblem> {
    let mut bits = cx.universe.clone();
    let mut exact = true;
    for c in &filter.must {
        let e = condition(c, cx)?;
        exact &= e.exact;
        bits.intersect_with(&e.bits);
    }
    if !filter.should.is_empty() {
        let mut any = SlotBitset::new();
        for c in &filter.should {
            let e = condition(c, cx)?;
            exact &= e.exact;
            any.union_with(&e.bits);
        }
        bits.intersect_with(&any);
    }
    for c in &filter.must_not {
        let e = condition(c, cx)?;
        if e.exact {
            bits.subtract(&e.bits);
        } else {
            exact = false;
        }
    }
    if let Some(ms) = &filter.min_should {
        match at_least(&ms.conditions, ms.min_count, cx)? {
            Some(e) => {
                exact &= e.exact;
                bits.intersect_with(&e.bits);
            }
            None => exact = false,
        }
    }
    Ok(Evaluated { bits, exact })
}

/// Most bitset steps (conditions × `min_count`) `at_least` takes before leaving a `min_should`
/// clause to the payload check.
const AT_LEAST_BUDGET: usize = 4096;

/// The slots where at least `n` of `conditions` hold (`None`: too costly to compute here).
/// `reached[k]` holds the slots where at least `k + 1` of the conditions seen so far hold; a
/// condition moves every slot it holds for up one level. Inexact conditions give supersets, so
/// the result is a superset then, and says so.
fn at_least(
    conditions: &[Condition],
    n: usize,
    cx: &Context<'_>,
) -> Result<Option<Evaluated>, FilterProblem> {
    if n > conditions.len() {
        return Ok(Some(Evaluated {
            bits: SlotBitset::new(),
            exact: true,
        }));
    }
    if n.saturating_mul(conditions.len()) > AT_LEAST_BUDGET {
        return Ok(None);
    }
    let mut reached = vec![SlotBitset::new(); n];
    let mut exact = true;
    for c in conditions {
        let e = condition(c, cx)?;
        exact &= e.exact;
        for k in (1..n).rev() {
            let mut up = reached[k - 1].clone();
            up.intersect_with(&e.bits);
            reached[k].union_with(&up);
        }
        reached[0].union_with(&e.bits);
    }
    let mut bits = reached.pop().unwrap_or_default();
    bits.recount();
    Ok(Some(Evaluated { bits, exact }))
}

fn condition(c: &Condition, cx: &Context<'_>) -> Result<Evaluated, FilterProblem> {
    let inexact = || Evaluated {
        bits: cx.universe.clone(),
        exact: false,
    };
    let mut bits = SlotBitset::new();
    match c {
        Condition::Nested(f) => return evaluate(f, cx),
        Condition::HasId(ids) => {
            for id in ids {
                if let Some(&s) = cx.id_slots.get(id) {
                    bits.insert_uncounted(s);
                }
            }
        }
        Condition::Match { key, .. }
        | Condition::MatchAny { key, .. }
        | Condition::Range { key, .. } => match cx.index.field(key) {
            Some(f) => field_condition(f, key, c, &mut bits, false)?,
            None => return Ok(inexact()),
        },
        Condition::MatchText { key, text, .. } => return Ok(text_candidates(key, text, cx)),
        // Decided from payloads: `except` holds for values of other types than the list's,
        // which a typed payload index does not hold; value counts and per-element filters are
        // not in the indexes.
        Condition::MatchExcept { .. }
        | Condition::ValuesCount { .. }
        | Condition::AnyElement { .. }
        | Condition::Geo { .. } => return Ok(inexact()),
        Condition::Exists { key } | Condition::IsNull { key } | Condition::IsEmpty { key } => {
            let Some(f) = cx.index.field(key) else {
                return Ok(inexact());
            };
            match c {
                Condition::IsNull { .. } => f.nulls_into(&mut bits),
                Condition::Exists { .. } => f.exists_into(&mut bits),
                _ => {
                    let mut present = SlotBitset::new();
                    f.exists_into(&mut present);
                    present.recount();
                    bits = cx.universe.clone();
                    bits.subtract(&present);
                }
            }
        }
    }
    bits.recount();
    bits.intersect_with(cx.universe);
    Ok(Evaluated { bits, exact: true })
}

/// The slots a `match: {text | phrase}` condition may hold for: a superset, from the field's
/// text index when it has one that tokenizes like the condition (Unicode words; its stop words
/// and stemming only merge terms), else every slot. A slot whose strings hold every word of
/// `text` holds every term of it in the index (the index's text of a field is all its strings
/// joined, [`crate::query::state::text::field_text`]), so the slots holding all the terms, plus
/// those without a document in the index, cover every match; payloads decide the rest
/// (`phrase` needs the word order, which the index does not keep).
fn text_candidates(key: &str, text: &str, cx: &Context<'_>) -> Evaluated {
    let every = || Evaluated {
        bits: cx.universe.clone(),
        exact: false,
    };
    let Some(t) = cx
        .texts
        .get(key)
        .filter(|t| t.analyzer.tokenizer() == Tokenizer::Unicode)
    else {
        return every();
    };
    let terms = t.analyzer.terms(text);
    if terms.is_empty() {
        return every();
    }
    let mut indexed = SlotBitset::new();
    for s in t.index.doc_slots() {
        indexed.insert_uncounted(s);
    }
    indexed.recount();
    let mut bits = cx.universe.clone();
    bits.subtract(&indexed);
    let mut holding = SlotBitset::new();
    for s in t.index.slots_with_all(&terms) {
        holding.insert_uncounted(s);
    }
    holding.recount();
    holding.intersect_with(cx.universe);
    bits.union_with(&holding);
    bits.recount();
    Evaluated { bits, exact: false }
}

fn mismatch(key: &str, kind: PayloadIndexKind, reason: impl Into<String>) -> FilterProblem {
    FilterProblem::TypeMismatch {
        key: key.to_string(),
        indexed: kind_name(kind),
        reason: reason.into(),
    }
}

/// The key of a match value under `kind`.
fn match_key(key: &str, kind: PayloadIndexKind, v: &MatchValue) -> Result<Vec<u8>, FilterProblem> {
    match (kind, v) {
        (PayloadIndexKind::Keyword, MatchValue::Keyword(s)) => Ok(s.as_bytes().to_vec()),
        (PayloadIndexKind::Integer, MatchValue::Integer(i)) => Ok(int_key(*i)),
        (PayloadIndexKind::Float, MatchValue::Integer(i)) => Ok(float_key(*i as f64)),
        (PayloadIndexKind::Bool, MatchValue::Bool(b)) => Ok(vec![u8::from(*b)]),
        (PayloadIndexKind::Datetime, _) => Err(mismatch(
            key,
            kind,
            "match cannot compare datetimes (equal instants have many spellings); use a range",
        )),
        (_, v) => Err(mismatch(key, kind, format!("cannot match {v:?}"))),
    }
}

/// Adds the slots satisfying a match or range condition on an indexed field to `out`
/// (`check_only`: just type-check).
fn field_condition(
    f: &FieldPostings,
    key: &str,
    c: &Condition,
    out: &mut SlotBitset,
    check_only: bool,
) -> Result<(), FilterProblem> {
    match c {
        Condition::Match { value, .. } => {
            let k = match_key(key, f.kind, value)?;
            if !check_only {
                f.value_into(&k, out);
            }
        }
        Condition::MatchAny { any, .. } => {
            for v in any {
                let k = match_key(key, f.kind, v)?;
                if !check_only {
                    f.value_into(&k, out);
                }
            }
        }
        Condition::Range { range, .. } => {
            let (lo, hi) = range_keys(key, f.kind, range)?;
            if !check_only {
                f.range_into(lo, hi, out);
            }
        }
        _ => {}
    }
    Ok(())
}

type KeyRange = (KeyBound<Vec<u8>>, KeyBound<Vec<u8>>);

/// The key range of a range condition under `kind`.
fn range_keys(key: &str, kind: PayloadIndexKind, r: &Range) -> Result<KeyRange, FilterProblem> {
    match kind {
        PayloadIndexKind::Integer | PayloadIndexKind::Datetime => {
            let datetime = kind == PayloadIndexKind::Datetime;
            if r.is_datetime() != datetime {
                return Err(mismatch(
                    key,
                    kind,
                    if datetime {
                        "range bounds must be RFC 3339 datetimes"
                    } else {
                        "range bounds must be numbers"
                    },
                ));
            }
            // Inclusive integer bounds; floats round inwards.
            let (mut lo, mut hi) = (i64::MIN as i128, i64::MAX as i128);
            for (op, b) in r.bounds() {
                let (floor, ceil) = match b {
                    Bound::Integer(i) | Bound::Datetime(i) => (i as i128, i as i128),
                    Bound::Float(x) => (clamp(x.floor()), clamp(x.ceil())),
                };
                match op {
                    "gt" => lo = lo.max(floor + 1),
                    "gte" => lo = lo.max(ceil),
                    "lt" => hi = hi.min(ceil - 1),
                    _ => hi = hi.min(floor),
                }
            }
            if lo > hi || lo > i64::MAX as i128 || hi < i64::MIN as i128 {
                // An empty range: a key range that holds nothing.
                let k = int_key(0);
                return Ok((KeyBound::Excluded(k.clone()), KeyBound::Excluded(k)));
            }
            Ok((
                KeyBound::Included(int_key(lo as i64)),
                KeyBound::Included(int_key(hi as i64)),
            ))
        }
        PayloadIndexKind::Float => {
            if r.is_datetime() {
                return Err(mismatch(key, kind, "range bounds must be numbers"));
            }
            let as_f = |b: Bound| match b {
                Bound::Integer(i) => i as f64,
                Bound::Float(x) => x,
                Bound::Datetime(t) => t as f64,
            };
            let mut lo: KeyBound<f64> = KeyBound::Unbounded;
            let mut hi: KeyBound<f64> = KeyBound::Unbounded;
            for (op, b) in r.bounds() {
                let x = as_f(b);
                match op {
                    "gt" | "gte" => {
                        let new = if op == "gt" {
                            KeyBound::Excluded(x)
                        } else {
                            KeyBound::Included(x)
                        };
                        lo = tighter(lo, new, true);
                    }
                    _ => {
                        let new = if op == "lt" {
                            KeyBound::Excluded(x)
                        } else {
                            KeyBound::Included(x)
                        };
                        hi = tighter(hi, new, false);
                    }
                }
            }
            let enc = |b: KeyBound<f64>| match b {
                KeyBound::Included(x) => KeyBound::Included(float_key(x)),
                KeyBound::Excluded(x) => KeyBound::Excluded(float_key(x)),
                KeyBound::Unbounded => KeyBound::Unbounded,
            };
            Ok((enc(lo), enc(hi)))
        }
        PayloadIndexKind::Keyword | PayloadIndexKind::Bool => {
            Err(mismatch(key, kind, "ranges apply to numbers and datetimes"))
        }
    }
}

fn clamp(x: f64) -> i128 {
    x.clamp(i64::MIN as f64 - 1.0, i64::MAX as f64 + 1.0) as i128
}

/// The tighter of two lower (`lower`) or upper bounds.
fn tighter(a: KeyBound<f64>, b: KeyBound<f64>, lower: bool) -> KeyBound<f64> {
    let val = |x: &KeyBound<f64>| match x {
        KeyBound::Included(v) | KeyBound::Excluded(v) => Some(*v),
        KeyBound::Unbounded => None,
    };
    match (val(&a), val(&b)) {
        (None, _) => b,
        (_, None) => a,
        (Some(x), Some(y)) if x == y => {
            if matches!(a, KeyBound::Excluded(_)) {
                a
            } else {
                b
            }
        }
        (Some(x), Some(y)) => {
            if (x > y) == lower {
                a
            } else {
                b
            }
        }
    }
}

/// A filter compiled into per-slot tests over the payload indexes (only for filters whose
/// every condition has an index): answers "does slot `s` match?" without a payload read.
pub(crate) enum Checker<'a> {
    /// The slot's codes of a field contain one in the inclusive range.
    Codes(&'a FieldPostings, u64, u64),
    /// The slot's codes contain one of these (sorted).
    AnyCode(&'a FieldPostings, Vec<u64>),
    Exists(&'a FieldPostings),
    IsNull(&'a FieldPostings),
    IsEmpty(&'a FieldPostings),
    /// One of these slots (has_id).
    Slots(std::collections::HashSet<u32>),
    Never,
    All {
        must: Vec<Checker<'a>>,
        should: Vec<Checker<'a>>,
        must_not: Vec<Checker<'a>>,
        /// At least this many of these hold.
        min_should: Option<(Vec<Checker<'a>>, usize)>,
    },
}

impl<'a> Checker<'a> {
    /// Compiles `filter`; `None` if some condition is on a field without an index.
    pub(crate) fn compile(
        filter: &Filter,
        index: &'a PayloadIndex,
        id_slots: &HashMap<EntityId, u32>,
    ) -> Result<Option<Checker<'a>>, FilterProblem> {
        let list = |cs: &[Condition]| -> Result<Option<Vec<Checker<'a>>>, FilterProblem> {
            let mut out = Vec::with_capacity(cs.len());
            for c in cs {
                match Self::condition(c, index, id_slots)? {
                    Some(ch) => out.push(ch),
                    None => return Ok(None),
                }
            }
            Ok(Some(out))
        };
        let (Some(mut must), Some(should), Some(must_not)) = (
            list(&filter.must)?,
            list(&filter.should)?,
            list(&filter.must_not)?,
        ) else {
            return Ok(None);
        };
        let min_should = match &filter.min_should {
            None => None,
            Some(ms) => match list(&ms.conditions)? {
                Some(cs) => Some((cs, ms.min_count)),
                None => return Ok(None),
            },
        };
        if must.len() == 1 && should.is_empty() && must_not.is_empty() && min_should.is_none() {
            // One condition: test it directly (this runs once per visited graph node).
            return Ok(must.pop());
        }
        Ok(Some(Checker::All {
            must,
            should,
            must_not,
            min_should,
        }))
    }

    fn condition(
        c: &Condition,
        index: &'a PayloadIndex,
        id_slots: &HashMap<EntityId, u32>,
    ) -> Result<Option<Checker<'a>>, FilterProblem> {
        Ok(Some(match c {
            Condition::Nested(f) => return Self::compile(f, index, id_slots),
            Condition::HasId(ids) => Checker::Slots(
                ids.iter()
                    .filter_map(|id| id_slots.get(id).copied())
                    .collect(),
            ),
            Condition::Match { key, value } => {
                let Some(f) = index.field(key) else {
                    return Ok(None);
                };
                match f.code(&match_key(key, f.kind, value)?) {
                    Some(code) => Checker::Codes(f, code, code),
                    None => Checker::Never,
                }
            }
            Condition::MatchAny { key, any } => {
                let Some(f) = index.field(key) else {
                    return Ok(None);
                };
                let mut codes = Vec::with_capacity(any.len());
                for v in any {
                    if let Some(code) = f.code(&match_key(key, f.kind, v)?) {
                        codes.push(code);
                    }
                }
                codes.sort_unstable();
                codes.dedup();
                Checker::AnyCode(f, codes)
            }
            Condition::Range { key, range } => {
                let Some(f) = index.field(key) else {
                    return Ok(None);
                };
                let (lo, hi) = range_keys(key, f.kind, range)?;
                let code = |k: &[u8]| crate::query::payload::postings::ordered_code(k);
                let lo = match lo {
                    KeyBound::Included(k) => Some(code(&k)),
                    KeyBound::Excluded(k) => code(&k).checked_add(1),
                    KeyBound::Unbounded => Some(0),
                };
                let hi = match hi {
                    KeyBound::Included(k) => Some(code(&k)),
                    KeyBound::Excluded(k) => code(&k).checked_sub(1),
                    KeyBound::Unbounded => Some(u64::MAX),
                };
                match (lo, hi) {
                    (Some(lo), Some(hi)) if lo <= hi => Checker::Codes(f, lo, hi),
                    _ => Checker::Never,
                }
            }
            Condition::MatchText { .. }
            | Condition::MatchExcept { .. }
            | Condition::ValuesCount { .. }
            | Condition::AnyElement { .. }
            | Condition::Geo { .. } => return Ok(None),
            Condition::Exists { key } | Condition::IsNull { key } | Condition::IsEmpty { key } => {
                let Some(f) = index.field(key) else {
                    return Ok(None);
                };
                match c {
                    Condition::Exists { .. } => Checker::Exists(f),
                    Condition::IsNull { .. } => Checker::IsNull(f),
                    _ => Checker::IsEmpty(f),
                }
            }
        }))
    }

    /// Whether `slot` passes (the caller checks that it is live).
    pub(crate) fn matches(&self, slot: u32) -> bool {
        match self {
            Checker::Codes(f, lo, hi) => f.slot_has(slot, |c| *lo <= c && c <= *hi),
            Checker::AnyCode(f, codes) => f.slot_has(slot, |c| codes.binary_search(&c).is_ok()),
            Checker::Exists(f) => f.slot_exists(slot),
            Checker::IsNull(f) => f.slot_null(slot),
            Checker::IsEmpty(f) => !f.slot_exists(slot),
            Checker::Slots(s) => s.contains(&slot),
            Checker::Never => false,
            Checker::All {
                must,
                should,
                must_not,
                min_should,
            } => {
                must.iter().all(|c| c.matches(slot))
                    && (should.is_empty() || should.iter().any(|c| c.matches(slot)))
                    && !must_not.iter().any(|c| c.matches(slot))
                    && min_should.as_ref().is_none_or(|(cs, n)| {
                        cs.iter().filter(|c| c.matches(slot)).take(*n).count() == *n
                    })
            }
        }
    }
}

/// Value entries a cardinality bound may walk in a range before giving up.
const BOUND_BUDGET: usize = 64;

/// A cheap upper bound on the slots `filter` can match, from posting sizes alone (`None`:
/// not cheaply bounded). `must` takes the smallest bound of its conditions, `should` the sum;
/// `must_not` never shrinks a bound. Used to skip sampling for clearly selective filters.
pub(crate) fn upper_bound(filter: &Filter, index: &PayloadIndex) -> Option<usize> {
    let mut best: Option<usize> = None;
    for c in &filter.must {
        if let Some(b) = condition_bound(c, index) {
            best = Some(best.map_or(b, |x| x.min(b)));
        }
    }
    if !filter.should.is_empty() {
        let mut sum = 0usize;
        for c in &filter.should {
            sum = sum.saturating_add(condition_bound(c, index)?);
        }
        best = Some(best.map_or(sum, |x| x.min(sum)));
    }
    if let Some(ms) = &filter.min_should {
        // A matching slot is counted by at least `min_count` of the conditions' bounds.
        let sum = ms.conditions.iter().try_fold(0usize, |acc, c| {
            Some(acc.saturating_add(condition_bound(c, index)?))
        });
        if let Some(sum) = sum {
            let b = sum / ms.min_count.max(1);
            best = Some(best.map_or(b, |x| x.min(b)));
        }
    }
    best
}

fn condition_bound(c: &Condition, index: &PayloadIndex) -> Option<usize> {
    match c {
        Condition::Nested(f) => upper_bound(f, index),
        Condition::HasId(ids) => Some(ids.len()),
        Condition::Match { key, value } => {
            let f = index.field(key)?;
            Some(f.value_count(&match_key(key, f.kind, value).ok()?) as usize)
        }
        Condition::MatchAny { key, any } => {
            let f = index.field(key)?;
            any.iter().try_fold(0usize, |acc, v| {
                Some(acc + f.value_count(&match_key(key, f.kind, v).ok()?) as usize)
            })
        }
        Condition::Range { key, range } => {
            let f = index.field(key)?;
            let (lo, hi) = range_keys(key, f.kind, range).ok()?;
            f.range_count(lo, hi, BOUND_BUDGET).map(|n| n as usize)
        }
        Condition::IsNull { key } => index.field(key).map(|f| f.null_count() as usize),
        Condition::Exists { .. }
        | Condition::IsEmpty { .. }
        | Condition::MatchText { .. }
        | Condition::MatchExcept { .. }
        | Condition::ValuesCount { .. }
        | Condition::AnyElement { .. }
        | Condition::Geo { .. } => None,
    }
}
