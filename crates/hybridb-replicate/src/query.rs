//! The same search against the target: hybridb's [`SearchRequest`] (vector, `k`, filter,
//! score threshold) as one SQL query, answered as hybridb [`Hit`]s, so that an application can
//! move its reads with one setting.
//!
//! The filter becomes `jsonb` predicates with the meaning of [`hybridb::Filter::matches`]:
//! every condition on a field is a `payload @? '<jsonpath>'` test (lax mode walks into arrays
//! on the way and at the end, as hybridb's dotted keys do; served by the GIN `jsonb_path_ops`
//! index), `has_id` is `id = ANY(...)`, and `must`/`should`/`must_not` are `AND`/`OR`/`NOT`.
//! What cannot be said exactly is refused with [`Error::UnsupportedFilter`], never answered
//! differently: datetime ranges, keys with an empty part or an array element index (`a[0]`),
//! and conditions it has no SQL for (geo areas).
//!
//! Ordering is `embedding <=> $1` (cosine), `<#>` (dot) or `<->` (L2), `LIMIT k`, inside a
//! transaction with `SET LOCAL hnsw.iterative_scan = relaxed_order` so that a filtered query
//! still returns `k` rows when `k` rows match (and `citus.propagate_set_commands = 'local'`
//! on Citus, so the settings reach the workers). Results are re-sorted by exact distance.

use std::fmt::Write as _;

use hybridb::{Bound, Condition, EntityId, Filter, Hit, MatchValue, Metric, SearchRequest};
use serde_json::Value;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::pg::{ident, literal};

/// A filter's SQL form and the parameters it binds (`$2`, `$3`, ... after the query vector).
#[derive(Debug, Clone, PartialEq)]
pub struct SqlFilter {
    /// A boolean SQL expression over the columns `id` and `payload`.
    pub sql: String,
    /// Id lists bound by `has_id` conditions, in parameter order.
    pub id_params: Vec<Vec<Uuid>>,
}

/// Translates `filter` into a boolean SQL expression; its `has_id` lists become parameters
/// `$first_param`, `$first_param + 1`, ...
pub fn filter_sql(filter: &Filter, first_param: usize) -> Result<SqlFilter> {
    let mut out = SqlFilter {
        sql: String::new(),
        id_params: Vec::new(),
    };
    out.sql = filter_expr(filter, first_param, &mut out.id_params)?;
    Ok(out)
}

fn filter_expr(f: &Filter, first: usize, ids: &mut Vec<Vec<Uuid>>) -> Result<String> {
    let mut parts = Vec::new();
    for c in &f.must {
        parts.push(condition(c, first, ids)?);
    }
    if !f.should.is_empty() {
        let any = f
            .should
            .iter()
            .map(|c| condition(c, first, ids))
            .collect::<Result<Vec<_>>>()?;
        parts.push(format!("({})", any.join(" OR ")));
    }
    for c in &f.must_not {
        parts.push(format!("NOT {}", condition(c, first, ids)?));
    }
    if let Some(ms) = &f.min_should {
        let terms = ms
            .conditions
            .iter()
            .map(|c| {
                Ok(format!(
                    "(CASE WHEN {} THEN 1 ELSE 0 END)",
                    condition(c, first, ids)?
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        parts.push(if terms.is_empty() {
            "FALSE".into()
        } else {
            format!("({} >= {})", terms.join(" + "), ms.min_count)
        });
    }
    if parts.is_empty() {
        return Ok("TRUE".into());
    }
    Ok(format!("({})", parts.join(" AND ")))
}

/// A jsonpath string literal.
fn jp_string(s: &str) -> String {
    // JSON string escaping is valid jsonpath string syntax.
    Value::String(s.to_string()).to_string()
}

/// `$."a"[*][*][*]."b"[*][*][*]`: lax mode unwraps one array level per accessor and the
/// comparisons one more, so arrays nested up to four deep at each step are walked as
/// hybridb flattens them.
fn jp_path(key: &str) -> Result<String> {
    let mut out = String::from("$");
    for part in key.split('.') {
        if part.is_empty() {
            return Err(Error::UnsupportedFilter(format!(
                "key {key:?} (an empty part)"
            )));
        }
        // `a[0]`: one element of an array, which the lax walk below (every element) would
        // not keep apart.
        if part.contains('[') {
            return Err(Error::UnsupportedFilter(format!(
                "key {key:?} (an array element index)"
            )));
        }
        let _ = write!(out, ".{}[*][*][*]", jp_string(part));
    }
    Ok(out)
}

fn jp_value(v: &MatchValue) -> String {
    match v {
        MatchValue::Keyword(s) => jp_string(s),
        MatchValue::Integer(i) => i.to_string(),
        MatchValue::Bool(b) => b.to_string(),
        // A newer engine's value kind: refuse rather than guess (caught by the caller).
        #[allow(unreachable_patterns)]
        _ => String::new(),
    }
}

fn jp_bound(b: Bound, key: &str) -> Result<String> {
    match b {
        Bound::Integer(i) => Ok(i.to_string()),
        Bound::Float(x) if x.is_finite() => Ok(format!("{x:?}")),
        Bound::Float(_) => Err(Error::UnsupportedFilter(format!(
            "range on {key:?} with a non-finite bound"
        ))),
        Bound::Datetime(_) => Err(Error::UnsupportedFilter(format!(
            "range on {key:?} with datetime bounds"
        ))),
    }
}

fn exists(key: &str, predicate: &str) -> Result<String> {
    let path = format!("{} ? ({predicate})", jp_path(key)?);
    Ok(format!("(payload @? {}::jsonpath)", literal(&path)))
}

fn condition(c: &Condition, first: usize, ids: &mut Vec<Vec<Uuid>>) -> Result<String> {
    match c {
        Condition::Match { key, value } => exists(key, &format!("@ == {}", jp_value(value))),
        Condition::MatchAny { key, any } => {
            if any.is_empty() {
                return Ok("FALSE".into());
            }
            let alts: Vec<String> = any
                .iter()
                .map(|v| format!("@ == {}", jp_value(v)))
                .collect();
            exists(key, &alts.join(" || "))
        }
        Condition::MatchExcept { key, except } => {
            // `@ == v` is unknown (not false) when the types differ, and such a value is not
            // in the list: `is unknown` keeps it, as hybridb's evaluation does.
            let mut tests = vec!["@.type() != \"null\"".to_string()];
            for v in except {
                let eq = format!("@ == {}", jp_value(v));
                tests.push(format!("(({eq}) is unknown || !({eq}))"));
            }
            exists(key, &tests.join(" && "))
        }
        Condition::Range { key, range } => {
            let mut tests = Vec::new();
            for (op, b) in [
                (">", range.gt),
                (">=", range.gte),
                ("<", range.lt),
                ("<=", range.lte),
            ] {
                if let Some(b) = b {
                    tests.push(format!("@ {op} {}", jp_bound(b, key)?));
                }
            }
            if tests.is_empty() {
                return Err(Error::UnsupportedFilter(format!(
                    "range on {key:?} without bounds"
                )));
            }
            exists(key, &tests.join(" && "))
        }
        Condition::Exists { key } => exists(key, "@.type() != \"null\""),
        Condition::IsEmpty { key } => Ok(format!("NOT {}", exists(key, "@.type() != \"null\"")?)),
        Condition::IsNull { key } => exists(key, "@.type() == \"null\""),
        Condition::HasId(set) => {
            ids.push(set.iter().map(|i| *i.as_uuid()).collect());
            Ok(format!("(id = ANY(${}))", first + ids.len() - 1))
        }
        Condition::Nested(f) => filter_expr(f, first, ids),
        #[allow(unreachable_patterns)]
        other => Err(Error::UnsupportedFilter(format!("{other:?}"))),
    }
}

/// The distance operator for a metric.
fn operator(metric: Metric) -> &'static str {
    match metric {
        Metric::Cosine => "<=>",
        Metric::Dot => "<#>",
        _ => "<->",
    }
}

/// hybridb's score for pgvector's distance (`<=>` is 1 - cosine, `<#>` is the negated inner
/// product, `<->` the Euclidean distance, which is hybridb's L2 score).
fn score(metric: Metric, distance: f64) -> f32 {
    match metric {
        Metric::Cosine => (1.0 - distance) as f32,
        Metric::Dot => (-distance) as f32,
        _ => distance as f32,
    }
}

/// The SQL of a search (parameters: `$1` the query vector, then the filter's id lists).
pub fn search_sql(
    schema: &str,
    collection: &str,
    metric: Metric,
    req: &SearchRequest,
) -> Result<(String, Vec<Vec<Uuid>>)> {
    let filter = match &req.filter {
        Some(f) => filter_sql(f, 2)?,
        None => SqlFilter {
            sql: "TRUE".into(),
            id_params: Vec::new(),
        },
    };
    let cols = match (req.with_payload, req.with_vector) {
        (true, true) => "id, payload, embedding",
        (true, false) => "id, payload, NULL::vector",
        (false, true) => "id, NULL::jsonb, embedding",
        (false, false) => "id, NULL::jsonb, NULL::vector",
    };
    let op = operator(metric);
    let sql = format!(
        "SELECT {cols}, (embedding {op} $1)::float8 AS distance FROM {}.{} WHERE {} \
         ORDER BY embedding {op} $1 LIMIT {}",
        ident(schema),
        ident(collection),
        filter.sql,
        req.k
    );
    Ok((sql, filter.id_params))
}

/// Runs hybridb's search request against the replicated collection on the target and
/// answers as hybridb does: [`Hit`]s best first, `score_threshold` applied.
///
/// `schema` is the sink's schema (`hybridb` by default). Errors: [`Error::InvalidQuery`] for
/// an unknown collection, a wrong dimension or `k` of 0; [`Error::UnsupportedFilter`] for a
/// filter the translation cannot carry exactly; [`Error::Target`] from the database.
pub async fn search(
    client: &mut Client,
    schema: &str,
    collection: &str,
    req: &SearchRequest,
) -> Result<Vec<Hit>> {
    if req.k == 0 {
        return Err(Error::InvalidQuery("k must be at least 1".into()));
    }
    let meta = format!("{}.collections", ident(&format!("{schema}_sink")));
    let row = client
        .query_opt(
            &format!("SELECT dim, metric FROM {meta} WHERE name = $1"),
            &[&collection],
        )
        .await?
        .ok_or_else(|| {
            Error::InvalidQuery(format!("collection {collection:?} is not on the target"))
        })?;
    let dim: i32 = row.get(0);
    let metric = match row.get::<_, String>(1).as_str() {
        "cosine" => Metric::Cosine,
        "dot" => Metric::Dot,
        _ => Metric::L2,
    };
    if req.vector.len() != dim as usize {
        return Err(Error::InvalidQuery(format!(
            "vector has dimension {}, collection expects {dim}",
            req.vector.len()
        )));
    }
    let (sql, id_params) = search_sql(schema, collection, metric, req)?;
    let query = pgvector::Vector::from(req.vector.clone());
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&query];
    for ids in &id_params {
        params.push(ids);
    }
    let citus = client
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'citus'", &[])
        .await?
        .is_some();
    let ef = req.ef.unwrap_or(64).max(req.k).min(1000);
    let tx = client.transaction().await?;
    let mut settings = String::new();
    if citus {
        settings.push_str("SET LOCAL citus.propagate_set_commands = 'local';");
    }
    let _ = write!(
        settings,
        "SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = {ef};"
    );
    tx.batch_execute(&settings).await?;
    let rows = tx.query(&sql, &params).await?;
    tx.commit().await?;
    let mut hits: Vec<(f64, Hit)> = Vec::with_capacity(rows.len());
    for row in rows {
        let id: Uuid = row.get(0);
        let payload: Option<Value> = row.get(1);
        let vector: Option<pgvector::Vector> = row.get(2);
        let distance: f64 = row.get(3);
        let s = score(metric, distance);
        if let Some(t) = req.score_threshold {
            let keep = match metric {
                Metric::Cosine | Metric::Dot => s >= t,
                _ => s <= t,
            };
            if !keep {
                continue;
            }
        }
        hits.push((
            distance,
            Hit {
                id: EntityId::from_uuid(id),
                score: s,
                payload: payload.and_then(|p| match p {
                    Value::Object(m) => Some(m),
                    _ => None,
                }),
                vector: vector.map(|v| v.to_vec()),
                vectors: None,
            },
        ));
    }
    // relaxed_order may return rows slightly out of order: hybridb's order is best first,
    // equal scores by id.
    hits.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
    Ok(hits.into_iter().map(|(_, h)| h).collect())
}
