//! Qdrant's example-based queries — `recommend`, `discover`, `context` — and `lookup_from`.
//!
//! Examples are point ids or vectors. A point id stands for the point's vector `using` (or
//! `lookup_from.vector`), read from the searched collection or from `lookup_from.collection`
//! (404 when that collection does not exist). The points of the searched collection named as
//! examples anywhere in a query are left out of its results (`plan.rs`), as Qdrant does.
//!
//! Scores are Qdrant's, over its internal similarity of the vector's metric (Cosine and Dot: the
//! dot product, cosine vectors being unit vectors; Euclid: the negated squared distance;
//! Manhattan: the negated distance; sparse: the dot product over shared indices), with
//! `sigmoid(x) = x / (1 + |x|)` and `scaled(x) = (sigmoid(x) + 1) / 2`:
//! - `recommend`, `average_vector` (the default): a `nearest` search for
//!   `avg(positive) + (avg(positive) - avg(negative))`, or `avg(positive)` without negatives;
//!   the search's own score;
//! - `recommend`, `best_score`: `scaled(best positive)` when the best positive similarity beats
//!   the best negative one, else `-scaled(best negative)`;
//! - `recommend`, `sum_scores`: `Σ positive - Σ negative`;
//! - `discover`: `rank + scaled(similarity to the target)`, `rank` summing +1 per context pair
//!   whose positive is more similar than its negative, -1 when less, 0 when equal;
//! - `context`: `Σ sigmoid(min(positive - negative - ε, 0))` over the pairs (0 at best).
//!
//! Cost: `average_vector` is one index search. The other kinds score every point that matches
//! the level's filter and has the vector, exactly (the ANN index does not take custom scores):
//! one pass over those records, O(points × examples) similarities per query. Qdrant walks its
//! HNSW graph with the custom score instead; on a collection small enough for its exact
//! search, both answer the same points.

use std::cmp::Ordering;

use hybridb::{Collection, EntityId, Filter, Hit, Metric, NamedVector, SparseVector};
use serde_json::Value;

use super::convert::{bad, collection, point_not_found, prepare};
use super::plan::{Carry, Ctx, Input, Level, fill, input_of};
use super::vectors::{Kind, Layout, QVector};
use crate::error::{ApiError, ErrorCode};

/// Where the vectors of point-id examples are read (Qdrant's `lookup_from`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lookup {
    /// The collection (or alias) read.
    pub(crate) collection: String,
    /// Its vector read (absent: the level's `using`).
    pub(crate) vector: Option<String>,
}

/// How `recommend` uses its examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Search for the average vector.
    AverageVector,
    /// The best similarity to a positive against the best to a negative.
    BestScore,
    /// The sum of similarities to the positives minus those to the negatives.
    SumScores,
}

/// A query by examples.
#[derive(Debug, Clone)]
pub(crate) enum Custom {
    /// Qdrant's `recommend`.
    Recommend {
        /// Look for points like these.
        positive: Vec<Input>,
        /// And unlike these.
        negative: Vec<Input>,
        /// How.
        strategy: Strategy,
    },
    /// Qdrant's `discover`: the target, constrained by context pairs.
    Discover {
        /// The search objective.
        target: Input,
        /// `(positive, negative)` pairs.
        pairs: Vec<(Input, Input)>,
    },
    /// Qdrant's `context`: only context pairs.
    Context(Vec<(Input, Input)>),
}

impl Custom {
    /// Every example of the query.
    pub(crate) fn inputs(&self) -> Vec<&Input> {
        match self {
            Custom::Recommend {
                positive, negative, ..
            } => positive.iter().chain(negative).collect(),
            Custom::Discover { target, pairs } => std::iter::once(target)
                .chain(pairs.iter().flat_map(|(p, n)| [p, n]))
                .collect(),
            Custom::Context(pairs) => pairs.iter().flat_map(|(p, n)| [p, n]).collect(),
        }
    }
}

/// Reads `lookup_from`: `{"collection": ..., "vector"?: ...}`.
pub(crate) fn lookup_of(v: Option<&Value>, at: &str) -> Result<Option<Lookup>, ApiError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let at = format!("{at}lookup_from");
    let collection = match v.get("collection") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(bad(&at, "expected {\"collection\": ..., \"vector\"?: ...}")),
    };
    let vector = match v.get("vector") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad(&format!("{at}.vector"), "expected a vector name")),
    };
    Ok(Some(Lookup { collection, vector }))
}

/// A list of examples (absent or null: none).
fn examples(v: Option<&Value>, at: &str) -> Result<Vec<Input>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, x)| input_of(x, &format!("{at}[{i}]")))
            .collect(),
        Some(_) => Err(bad(at, "expected a list of point ids or vectors")),
    }
}

/// Context pairs: one `{"positive", "negative"}` or a list of them (absent or null: none).
fn pairs_of(v: Option<&Value>, at: &str) -> Result<Vec<(Input, Input)>, ApiError> {
    let pair = |p: &Value, at: &str| -> Result<(Input, Input), ApiError> {
        match (p.get("positive"), p.get("negative")) {
            (Some(pos), Some(neg)) => Ok((
                input_of(pos, &format!("{at}.positive"))?,
                input_of(neg, &format!("{at}.negative"))?,
            )),
            _ => Err(bad(at, "expected {\"positive\": ..., \"negative\": ...}")),
        }
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, p)| pair(p, &format!("{at}[{i}]")))
            .collect(),
        Some(p @ Value::Object(_)) => Ok(vec![pair(p, at)?]),
        Some(_) => Err(bad(at, "expected a context pair or a list of them")),
    }
}

/// Reads the query `{kind: v}` for `kind` one of `recommend`, `discover`, `context`.
pub(crate) fn custom_of(kind: &str, v: &Value, at: &str) -> Result<Custom, ApiError> {
    let at = format!("{at}.{kind}");
    match kind {
        "recommend" => {
            if !v.is_object() {
                return Err(bad(
                    &at,
                    "expected {\"positive\"?, \"negative\"?, \"strategy\"?}",
                ));
            }
            let positive = examples(v.get("positive"), &format!("{at}.positive"))?;
            let negative = examples(v.get("negative"), &format!("{at}.negative"))?;
            let strategy = match v.get("strategy") {
                None | Some(Value::Null) => Strategy::AverageVector,
                Some(s) => match s.as_str() {
                    Some("average_vector") => Strategy::AverageVector,
                    Some("best_score") => Strategy::BestScore,
                    Some("sum_scores") => Strategy::SumScores,
                    _ => {
                        return Err(bad(
                            &format!("{at}.strategy"),
                            "expected \"average_vector\", \"best_score\" or \"sum_scores\"",
                        ));
                    }
                },
            };
            if positive.is_empty() && negative.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::ValidationFailed,
                    "positives, negatives: At least one positive or negative vector/id must be \
                     provided",
                ));
            }
            if strategy == Strategy::AverageVector && positive.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    "At least one positive vector ID required with this strategy",
                ));
            }
            Ok(Custom::Recommend {
                positive,
                negative,
                strategy,
            })
        }
        "discover" => {
            let Some(target) = v.get("target").filter(|t| !t.is_null()) else {
                return Err(bad(&at, "expected {\"target\": ..., \"context\": [...]}"));
            };
            Ok(Custom::Discover {
                target: input_of(target, &format!("{at}.target"))?,
                pairs: pairs_of(v.get("context"), &format!("{at}.context"))?,
            })
        }
        _ => Ok(Custom::Context(pairs_of(Some(v), &at)?)),
    }
}

/// The vector of an example in the kind of the vector searched (`kind`, its dimension `dim`;
/// raw, as given or stored). A point id reads the point's vector from `lv.lookup` or the
/// searched collection.
pub(crate) fn example(
    cx: &Ctx<'_>,
    lv: &Level,
    (kind, dim): (Kind, usize),
    input: &Input,
) -> Result<QVector, ApiError> {
    let got = match input {
        Input::Dense(v) => QVector::Dense(v.clone()),
        Input::Sparse(s) => QVector::Sparse(s.clone()),
        Input::Point(p) => {
            let (source, name) = match &lv.lookup {
                Some(l) => (
                    collection(cx.db, &l.collection)?,
                    l.vector.clone().unwrap_or_else(|| lv.using.clone()),
                ),
                None => (cx.c.clone(), lv.using.clone()),
            };
            let (engine, source_kind) = Layout::of(source.config()).resolve(&name)?;
            let r = source
                .get(p.to_entity()?)?
                .ok_or_else(|| point_not_found(*p))?;
            // As Qdrant stores it (cosine: a unit vector, also when written natively).
            stored_vector(r, &engine, source_kind)
                .filter(|v| !matches!(v, QVector::Dense(d) if d.is_empty()))
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::EntityNotFound,
                        format!("Vector with name {name:?} for point {p} not found"),
                    )
                })?
        }
    };
    match (&got, kind) {
        (QVector::Dense(v), Kind::Dense(_)) if v.len() != dim => Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!(
                "Wrong input: Vector dimension error: expected dim: {dim}, got {}",
                v.len()
            ),
        )),
        (QVector::Dense(_), Kind::Dense(_)) | (QVector::Sparse(_), Kind::Sparse) => Ok(got),
        (QVector::Sparse(_), Kind::Dense(_)) => Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!(
                "Wrong input: vector {:?} is dense, an example is sparse",
                lv.using
            ),
        )),
        (QVector::Dense(_), Kind::Sparse) => Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!(
                "Wrong input: vector {:?} is sparse, an example is dense",
                lv.using
            ),
        )),
    }
}

/// The vector `engine` of a record as Qdrant holds it (cosine: a unit vector, which the layer
/// writes, but an entity written through the native API may not be); `None` without it.
fn stored_vector(r: hybridb::Record, engine: &str, kind: Kind) -> Option<QVector> {
    let v = if engine.is_empty() {
        QVector::Dense(r.vector)
    } else {
        match r.vectors.get(engine) {
            Some(NamedVector::Dense(d)) => QVector::Dense(d.clone()),
            Some(NamedVector::Sparse(s)) => QVector::Sparse(s.clone()),
            _ => return None,
        }
    };
    Some(match (v, kind) {
        (QVector::Dense(d), Kind::Dense(Metric::Cosine)) => {
            QVector::Dense(prepare(d, Metric::Cosine))
        }
        (v, _) => v,
    })
}

/// Qdrant's internal similarity of `metric` (higher better).
pub(crate) fn similarity(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
    let pairs = a.iter().zip(b);
    match metric {
        Metric::L2 => -pairs.map(|(x, y)| (x - y) * (x - y)).sum::<f32>(),
        Metric::Manhattan => -pairs.map(|(x, y)| (x - y).abs()).sum::<f32>(),
        _ => pairs.map(|(x, y)| x * y).sum(),
    }
}

/// The dot product of two sparse vectors sorted by index.
fn sparse_dot(a: &SparseVector, b: &SparseVector) -> f32 {
    let (mut i, mut j, mut sum) = (0, 0, 0.0);
    while i < a.indices.len() && j < b.indices.len() {
        match a.indices[i].cmp(&b.indices[j]) {
            Ordering::Less => i += 1,
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                sum += a.values[i] * b.values[j];
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

fn sigmoid(x: f32) -> f32 {
    x / (1.0 + x.abs())
}

fn scaled(x: f32) -> f32 {
    0.5 * (sigmoid(x) + 1.0)
}

/// An example as scored: dense vectors prepared for the metric (cosine: unit length), sparse
/// ones sorted.
fn prepared(v: QVector, kind: Kind) -> QVector {
    match (v, kind) {
        (QVector::Dense(d), Kind::Dense(m)) => QVector::Dense(prepare(d, m)),
        (QVector::Sparse(mut s), _) => {
            sort_sparse(&mut s);
            QVector::Sparse(s)
        }
        (other, _) => other,
    }
}

fn sort_sparse(s: &mut SparseVector) {
    let mut pairs: Vec<(u32, f32)> = s
        .indices
        .iter()
        .copied()
        .zip(s.values.iter().copied())
        .collect();
    pairs.sort_by_key(|p| p.0);
    s.indices = pairs.iter().map(|p| p.0).collect();
    s.values = pairs.iter().map(|p| p.1).collect();
}

/// The similarity of two vectors of the same kind (0 across kinds, which `example` rules out).
fn sim(kind: Kind, a: &QVector, b: &QVector) -> f32 {
    match (a, b, kind) {
        (QVector::Dense(a), QVector::Dense(b), Kind::Dense(m)) => similarity(m, a, b),
        (QVector::Sparse(a), QVector::Sparse(b), _) => sparse_dot(a, b),
        _ => 0.0,
    }
}

/// The average of vectors (the mean per dimension; sparse: over the union of indices).
fn average(vs: &[QVector]) -> QVector {
    let n = vs.len().max(1) as f32;
    match vs.first() {
        Some(QVector::Sparse(_)) => {
            let mut acc = std::collections::BTreeMap::<u32, f32>::new();
            for v in vs {
                if let QVector::Sparse(s) = v {
                    for (i, x) in s.indices.iter().zip(&s.values) {
                        *acc.entry(*i).or_default() += x / n;
                    }
                }
            }
            QVector::Sparse(SparseVector {
                indices: acc.keys().copied().collect(),
                values: acc.values().copied().collect(),
            })
        }
        _ => {
            let dim = vs.iter().map(|v| match v {
                QVector::Dense(d) => d.len(),
                QVector::Sparse(_) => 0,
            });
            let mut acc = vec![0.0f32; dim.max().unwrap_or(0)];
            for v in vs {
                if let QVector::Dense(d) = v {
                    acc.iter_mut().zip(d).for_each(|(a, x)| *a += x / n);
                }
            }
            QVector::Dense(acc)
        }
    }
}

/// `pos + pos - neg`, per dimension (sparse: over the union of indices, a missing one 0).
fn merge(pos: QVector, neg: QVector) -> QVector {
    match (pos, neg) {
        (QVector::Dense(p), QVector::Dense(n)) => {
            QVector::Dense(p.iter().zip(&n).map(|(p, n)| p + p - n).collect())
        }
        (QVector::Sparse(p), QVector::Sparse(n)) => {
            let mut acc = std::collections::BTreeMap::<u32, f32>::new();
            for (i, x) in p.indices.iter().zip(&p.values) {
                *acc.entry(*i).or_default() += 2.0 * x;
            }
            for (i, x) in n.indices.iter().zip(&n.values) {
                *acc.entry(*i).or_default() -= x;
            }
            QVector::Sparse(SparseVector {
                indices: acc.keys().copied().collect(),
                values: acc.values().copied().collect(),
            })
        }
        (p, _) => p,
    }
}

/// The vector searched for by `recommend` with `average_vector`.
pub(crate) fn average_query(
    cx: &Ctx<'_>,
    lv: &Level,
    shape: (Kind, usize),
    positive: &[Input],
    negative: &[Input],
) -> Result<Input, ApiError> {
    let read = |xs: &[Input]| -> Result<Vec<QVector>, ApiError> {
        xs.iter().map(|x| example(cx, lv, shape, x)).collect()
    };
    let pos = average(&read(positive)?);
    let v = if negative.is_empty() {
        pos
    } else {
        merge(pos, average(&read(negative)?))
    };
    Ok(match v {
        QVector::Dense(d) => Input::Dense(d),
        QVector::Sparse(mut s) => {
            sort_sparse(&mut s);
            Input::Sparse(s)
        }
    })
}

/// Runs a `best_score`, `sum_scores`, `discover` or `context` query: every point matching `f`
/// that has the vector `lv.using`, scored exactly; the best `k` (ties by id).
pub(crate) fn scored(
    cx: &Ctx<'_>,
    lv: &Level,
    q: &Custom,
    f: Option<Filter>,
    k: usize,
    carry: Carry,
) -> Result<Vec<Hit>, ApiError> {
    let (engine, kind) = cx.layout.resolve(&lv.using)?;
    let shape = (kind, cx.dim(&engine));
    let read = |x: &Input| example(cx, lv, shape, x).map(|v| prepared(v, kind));
    let score: Box<dyn Fn(&QVector) -> f32> = match q {
        Custom::Recommend {
            positive,
            negative,
            strategy,
        } => {
            let pos = positive.iter().map(read).collect::<Result<Vec<_>, _>>()?;
            let neg = negative.iter().map(read).collect::<Result<Vec<_>, _>>()?;
            match strategy {
                Strategy::SumScores => Box::new(move |v| {
                    pos.iter().map(|p| sim(kind, p, v)).sum::<f32>()
                        - neg.iter().map(|n| sim(kind, n, v)).sum::<f32>()
                }),
                _ => Box::new(move |v| {
                    let best = |xs: &[QVector]| {
                        xs.iter()
                            .map(|x| sim(kind, x, v))
                            .fold(f32::NEG_INFINITY, |a, b| {
                                if b.total_cmp(&a).is_gt() { b } else { a }
                            })
                    };
                    let (p, n) = (best(&pos), best(&neg));
                    if p > n { scaled(p) } else { -scaled(n) }
                }),
            }
        }
        Custom::Discover { target, pairs } => {
            let target = read(target)?;
            let pairs = read_pairs(pairs, &read)?;
            Box::new(move |v| {
                let rank: i32 = pairs
                    .iter()
                    .map(|(p, n)| sim(kind, p, v).total_cmp(&sim(kind, n, v)) as i32)
                    .sum();
                rank as f32 + scaled(sim(kind, &target, v))
            })
        }
        Custom::Context(pairs) => {
            let pairs = read_pairs(pairs, &read)?;
            Box::new(move |v| {
                pairs
                    .iter()
                    .map(|(p, n)| {
                        sigmoid((sim(kind, p, v) - sim(kind, n, v) - f32::EPSILON).min(0.0))
                    })
                    .sum()
            })
        }
    };
    let mut all: Vec<(f32, EntityId)> = Vec::new();
    scan(cx.c, f.unwrap_or_default(), |r| {
        let id = r.id;
        let v = stored_vector(r, &engine, kind);
        if let Some(v) = v.filter(|v| !matches!(v, QVector::Dense(d) if d.is_empty())) {
            let s = score(&v);
            if lv.threshold.is_none_or(|t| s >= t) {
                all.push((s, id));
            }
        }
    })?;
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    all.truncate(k);
    let hits = all
        .into_iter()
        .map(|(score, id)| Hit::new(id, score))
        .collect();
    fill(cx.c, hits, carry)
}

type Pairs = Vec<(QVector, QVector)>;

fn read_pairs(
    pairs: &[(Input, Input)],
    read: &impl Fn(&Input) -> Result<QVector, ApiError>,
) -> Result<Pairs, ApiError> {
    pairs
        .iter()
        .map(|(p, n)| Ok((read(p)?, read(n)?)))
        .collect()
}

/// Records read per page of a full pass.
const PAGE: usize = 256;

/// Calls `each` with every record matching `f`, in id order (one read per page).
pub(crate) fn scan(
    c: &Collection,
    f: Filter,
    mut each: impl FnMut(hybridb::Record),
) -> Result<(), ApiError> {
    let mut after = None;
    loop {
        let page = c.scroll_where(&f, after, PAGE)?;
        page.records.into_iter().for_each(&mut each);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(()),
        }
    }
}

/// A `nearest` search for an input that a `lookup_from` turns into a vector.
pub(crate) fn looked_up(cx: &Ctx<'_>, lv: &Level, input: &Input) -> Result<Input, ApiError> {
    let (engine, kind) = cx.layout.resolve(&lv.using)?;
    Ok(match example(cx, lv, (kind, cx.dim(&engine)), input)? {
        QVector::Dense(d) => Input::Dense(d),
        QVector::Sparse(s) => Input::Sparse(s),
    })
}
