//! `filtered`: hybrid-query benchmark. Recall@k and single-thread QPS of filtered search at
//! several selectivities, for hybridb (its planner decides) and two baselines measured in the
//! same run over the same vectors: an exact scan of just the matching rows (which also gives
//! the ground truth) and a standalone HNSW graph (same M and ef_construction) searched with a
//! filter callback at the same ef.
//!
//! Attributes added to every row:
//! - `uncorrelated`: an integer drawn uniformly from `0..1_000_000`, independent of the vector;
//!   selectivity `s` keeps rows with a value below `s * 1_000_000`;
//! - `correlated`: the row's rank by distance to an anchor (a random base row), scaled to
//!   `0..1_000_000`, so that selectivity `s` keeps the ball of the `s * n` rows nearest the
//!   anchor — a region of the space, far from most queries;
//! - `label` (with `--labels`): the dataset's class label as a keyword; each query filters by
//!   its own label, and the ground truth is the dataset's same-label file.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use clap::Args;
use hybridb::index::hnsw::{Hnsw, HnswParams, Metric as HnswMetric};
use hybridb::{
    CollectionConfig, Condition, Database, Entity, EntityId, Filter, IndexKind, PayloadIndexKind,
    Range, SearchRequest,
};
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use serde_json::json;

use crate::engine::Quant;
use crate::metric::{Metric, normalise_rows};
use crate::report::{emit, round};
use crate::topk::TopK;
use crate::vecs::{read_ivecs, read_vectors};

/// Arguments of `filtered`.
#[derive(Args, Debug)]
pub struct FilteredArgs {
    /// Base vectors (.fvecs or .bvecs); the parent folder names the dataset.
    #[arg(long)]
    pub base: PathBuf,
    /// Query vectors (.fvecs or .bvecs).
    #[arg(long)]
    pub queries: PathBuf,
    /// Metric.
    #[arg(long, value_enum, default_value_t = Metric::L2)]
    pub metric: Metric,
    /// Base labels, one per line (adds the `label` attribute); needs `--query-labels` and
    /// `--label-gt`.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Query labels, one per line.
    #[arg(long)]
    pub query_labels: Option<PathBuf>,
    /// Same-label ground truth (.ivecs).
    #[arg(long)]
    pub label_gt: Option<PathBuf>,
    /// Selectivities (fractions of the base) for the two numeric attributes.
    #[arg(long, value_delimiter = ',', default_value = "0.001,0.01,0.1,0.5,1")]
    pub selectivities: Vec<f64>,
    /// Neighbours per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// HNSW links per node.
    #[arg(long, default_value_t = 16)]
    pub m: usize,
    /// HNSW build candidate list size.
    #[arg(long, default_value_t = 200)]
    pub ef_construction: usize,
    /// Search beam width (hybridb's default ef, and the callback baseline's ef).
    #[arg(long, default_value_t = 64)]
    pub ef: usize,
    /// Threads for building both graphs.
    #[arg(long, default_value_t = 2)]
    pub build_threads: usize,
    /// Use at most this many queries.
    #[arg(long, default_value_t = 1000)]
    pub max_queries: usize,
    /// Passes over the queries per case. Within a pass the three engines take turns over
    /// blocks of `--block` queries (in an order that rotates by block), so that load from
    /// elsewhere on a shared machine falls on all three alike; each engine reports its
    /// fastest pass.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Queries per turn. Each turn starts with one untimed query: the engine before may have
    /// cleared the CPU caches (a callback walk at low selectivity touches the whole graph), and
    /// a serving engine runs warm.
    #[arg(long, default_value_t = 100)]
    pub block: usize,
    /// Seed of the attributes.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Working directory for the database (a temporary one if absent).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Codes hybridb's HNSW walk ranks by.
    #[arg(long, value_enum, default_value_t = Quant::None)]
    pub quantization: Quant,
    /// Candidates per result hybridb rescores with f32 on a quantized index (1..=64).
    #[arg(long, default_value_t = 2.0)]
    pub oversampling: f32,
}

/// One result line.
#[derive(Serialize)]
struct FilteredRecord {
    bench: &'static str,
    dataset: String,
    attribute: String,
    selectivity: f64,
    engine: &'static str,
    plan: String,
    recall: f64,
    qps: f64,
    /// hybridb's codes (`none` for the baselines, which search f32).
    quantization: &'static str,
    /// Candidates per result rescored with f32 (1 for the baselines).
    oversampling: f64,
    /// Resident index of the engine: hybridb's collection index (graph, codes, f32 vectors),
    /// the callback graph, or the exact scan's vectors.
    index_bytes: u64,
    /// Resident set size of the process (all three engines live in it).
    rss_bytes: u64,
}

const SCALE: f64 = 1_000_000.0;

/// Which rows a query may return, and the hybridb filter that says so.
struct Case {
    attribute: String,
    selectivity: f64,
    /// Per query: the allowed rows (as a dense mask) and the filter.
    masks: Vec<std::sync::Arc<Vec<bool>>>,
    filters: Vec<Filter>,
    /// Precomputed ground truth (label), else computed by the exact baseline.
    gt: Option<Vec<Vec<u32>>>,
}

/// Runs the benchmark; prints one line per (attribute, selectivity, engine).
pub fn run_filtered(a: &FilteredArgs) -> Result<()> {
    let dataset = a
        .base
        .parent()
        .and_then(|p| p.file_name())
        .map_or("data".into(), |n| n.to_string_lossy().into_owned());
    let mut base = read_vectors(&a.base)?;
    let mut queries = read_vectors(&a.queries)?;
    ensure!(
        base.dim == queries.dim,
        "base and queries differ in dimension"
    );
    if a.metric.needs_normalising() {
        normalise_rows(&mut base.data, base.dim);
        normalise_rows(&mut queries.data, queries.dim);
    }
    let nq = queries.len().min(a.max_queries);
    let n = base.len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    let uncorrelated: Vec<i64> = (0..n).map(|_| rng.random_range(0..SCALE as i64)).collect();
    let anchor = base.row(rng.random_range(0..n)).to_vec();
    let mut by_distance: Vec<(f32, usize)> = (0..n)
        .map(|i| (a.metric.distance(&anchor, base.row(i)), i))
        .collect();
    by_distance.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let mut correlated = vec![0i64; n];
    for (rank, (_, i)) in by_distance.iter().enumerate() {
        correlated[*i] = (rank as f64 * SCALE / n as f64) as i64;
    }
    let labels = match (&a.labels, &a.query_labels, &a.label_gt) {
        (Some(b), Some(q), Some(g)) => Some((read_lines(b)?, read_lines(q)?, read_ivecs(g)?)),
        (None, None, None) => None,
        _ => anyhow::bail!("--labels, --query-labels and --label-gt go together"),
    };

    // hybridb: one collection with the attributes as indexed payload fields.
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    // No read caches: every query pass must search (the result cache would answer repeats).
    let db = Database::builder()
        .caches(hybridb::CacheSizes::OFF)
        .durability(hybridb::Durability::None)
        .index_threads(a.build_threads.max(1))
        .checkpoint_every(0, std::time::Duration::ZERO)
        .checkpoint_on_close(false)
        .open(dir.join("filtered.redb"))
        .context("opening the database")?;
    let metric = match a.metric {
        Metric::L2 => hybridb::Metric::L2,
        Metric::Cosine => hybridb::Metric::Cosine,
        Metric::Dot => hybridb::Metric::Dot,
    };
    let config = CollectionConfig::new(base.dim as u32, metric)
        .with_quantization(crate::engine::quantization(a.quantization))
        .with_index(IndexKind::Hnsw {
            m: a.m as u32,
            ef_construction: a.ef_construction as u32,
            ef: a.ef as u32,
        })
        .with_payload_index("uncorrelated", PayloadIndexKind::Integer)
        .with_payload_index("correlated", PayloadIndexKind::Integer)
        .with_payload_index("label", PayloadIndexKind::Keyword);
    let _ = db.drop_collection("filtered");
    let coll = db.create_collection("filtered", config)?;
    let t = Instant::now();
    for start in (0..n).step_by(1000) {
        let end = (start + 1000).min(n);
        let batch = (start..end)
            .map(|i| {
                let mut payload = json!({
                    "uncorrelated": uncorrelated[i],
                    "correlated": correlated[i],
                });
                if let Some((l, _, _)) = &labels {
                    payload["label"] = json!(l[i]);
                }
                Entity::new(
                    EntityId::from_u128(i as u128),
                    payload,
                    base.row(i).to_vec(),
                )
            })
            .collect();
        coll.upsert_batch(batch)?;
    }
    eprintln!(
        "filtered: loaded {n} rows into hybridb in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The callback baseline's graph.
    let t = Instant::now();
    let mut graph = Hnsw::new(HnswParams {
        m: a.m,
        ef_construction: a.ef_construction,
        ..HnswParams::new(
            base.dim,
            match a.metric {
                Metric::L2 => HnswMetric::L2,
                _ => HnswMetric::Dot,
            },
        )
    });
    let items: Vec<(u32, &[f32])> = (0..n).map(|i| (i as u32, base.row(i))).collect();
    graph
        .insert_batch_parallel(&items, a.build_threads)
        .map_err(|e| anyhow::anyhow!("baseline graph: {e}"))?;
    eprintln!(
        "filtered: built the baseline graph in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut cases = Vec::new();
    for (attribute, values) in [("uncorrelated", &uncorrelated), ("correlated", &correlated)] {
        for &s in &a.selectivities {
            let limit = (s * SCALE).round() as i64;
            let mask: std::sync::Arc<Vec<bool>> =
                std::sync::Arc::new(values.iter().map(|&v| v < limit).collect());
            let filter =
                Filter::new().must(Condition::range(attribute, Range::default().lt(limit)));
            cases.push(Case {
                attribute: attribute.into(),
                selectivity: s,
                masks: vec![mask; nq],
                filters: vec![filter; nq],
                gt: None,
            });
        }
    }
    if let Some((base_labels, query_labels, gt)) = &labels {
        let mut masks = Vec::with_capacity(nq);
        let mut filters = Vec::with_capacity(nq);
        let mut matching = 0usize;
        for ql in query_labels.iter().take(nq) {
            let mask: Vec<bool> = base_labels.iter().map(|l| l == ql).collect();
            matching += mask.iter().filter(|m| **m).count();
            masks.push(std::sync::Arc::new(mask));
            filters.push(Filter::new().must(Condition::matches_value("label", ql.as_str())));
        }
        cases.push(Case {
            attribute: "label".into(),
            selectivity: round(matching as f64 / (nq * n) as f64, 4),
            masks,
            filters,
            gt: Some(
                (0..nq)
                    .map(|q| gt.row(q).iter().take(a.k).map(|&r| r as u32).collect())
                    .collect(),
            ),
        });
    }

    for case in &cases {
        let line = |engine: &'static str, plan: String, recall: f64, qps: f64| {
            let ours = engine == "hybridb";
            FilteredRecord {
                bench: "filtered",
                dataset: dataset.clone(),
                attribute: case.attribute.clone(),
                selectivity: case.selectivity,
                engine,
                plan,
                recall: round(recall, 4),
                qps: round(qps, 1),
                quantization: if ours { a.quantization.name() } else { "none" },
                oversampling: if ours && a.quantization != Quant::None {
                    f64::from(a.oversampling)
                } else {
                    1.0
                },
                index_bytes: match engine {
                    "hybridb" => coll.index_memory_bytes() as u64,
                    "hnsw-callback" => graph.memory_bytes() as u64,
                    _ => (base.data.len() * 4) as u64,
                },
                rss_bytes: crate::commands::rss_bytes(),
            }
        };
        let mut best: [Option<Pass>; 3] = Default::default();
        for _ in 0..a.rounds.max(1) {
            let passes = run_pass(case, &base, &queries, &graph, &coll, nq, a)?;
            for (b, p) in best.iter_mut().zip(passes) {
                if b.as_ref().is_none_or(|b| p.secs < b.secs) {
                    *b = Some(p);
                }
            }
        }
        let [Some(exact), Some(cb), Some(ours)] = best else {
            anyhow::bail!("no pass ran");
        };
        // The exact scan's rows are the ground truth where the dataset brings none.
        let gt = case.gt.clone().unwrap_or_else(|| exact.rows.clone());
        let qps = |p: &Pass| nq as f64 / p.secs.max(1e-9);
        for (engine, p) in [
            ("exact-subset", &exact),
            ("hnsw-callback", &cb),
            ("hybridb", &ours),
        ] {
            emit(&line(engine, p.plan.clone(), recall(&p.rows, &gt), qps(p)))?;
        }
        eprintln!(
            "filtered: {} {}: hybridb mean filter {:.1} us, search {:.1} us, explain total {:.1} us",
            case.attribute,
            case.selectivity,
            ours.explain_us[0],
            ours.explain_us[1],
            ours.explain_us[2],
        );
    }
    drop(coll);
    db.close()?;
    Ok(())
}

/// One engine's pass over a case's queries.
#[derive(Default)]
struct Pass {
    /// Seconds spent answering, summed over the queries.
    secs: f64,
    rows: Vec<Vec<u32>>,
    /// hybridb's plans, counted (empty for the baselines).
    plan: String,
    /// hybridb's mean filter, search and total microseconds by `explain`.
    explain_us: [f64; 3],
}

impl Pass {
    /// One baseline's turn: one untimed query, then the turn's queries timed.
    fn turn(&mut self, turn: std::ops::Range<usize>, one: impl Fn(usize) -> Vec<u32>) {
        std::hint::black_box(one(turn.start));
        let t = Instant::now();
        for q in turn {
            self.rows.push(one(q));
        }
        self.secs += t.elapsed().as_secs_f64();
    }
}

/// One pass over the queries of `case`, answered by the exact scan of the matching rows, the
/// standalone graph with the case's mask as filter callback, and hybridb (its planner
/// decides), taking turns by blocks of queries in an order that rotates. Returns the three
/// passes.
fn run_pass(
    case: &Case,
    base: &crate::vecs::Vecs<f32>,
    queries: &crate::vecs::Vecs<f32>,
    graph: &Hnsw,
    coll: &hybridb::Collection,
    nq: usize,
    a: &FilteredArgs,
) -> Result<[Pass; 3]> {
    let [mut exact, mut cb, mut ours] = <[Pass; 3]>::default();
    let mut plans: std::collections::BTreeMap<String, usize> = Default::default();
    let mut explain_us = [0u64; 3];
    let exact_one = |q: usize| {
        let query = queries.row(q);
        let mut top = TopK::new(a.k);
        for (i, _) in case.masks[q].iter().enumerate().filter(|(_, m)| **m) {
            top.push(a.metric.distance(query, base.row(i)), i as u32);
        }
        top.into_sorted_rows()
    };
    let cb_one = |q: usize| -> Vec<u32> {
        let mask = &case.masks[q];
        let found = graph.search_filtered(queries.row(q), a.k, a.ef, &|s| mask[s as usize]);
        found.into_iter().map(|(s, _)| s).collect()
    };
    let ours_one = |q: usize| {
        let req = SearchRequest::new(queries.row(q).to_vec(), a.k)
            .filter(case.filters[q].clone())
            .oversampling(a.oversampling)
            .consistency(hybridb::Consistency::Eventual);
        coll.explain(&req)
    };
    let block = a.block.max(1);
    for (b, start) in (0..nq).step_by(block).enumerate() {
        let turn = start..(start + block).min(nq);
        // The order rotates from block to block, so that no engine always follows the same
        // one (whatever the one before leaves in the caches, each gets its share).
        for engine in (0..3).map(|e| (b + e) % 3) {
            match engine {
                0 => exact.turn(turn.clone(), exact_one),
                1 => cb.turn(turn.clone(), cb_one),
                _ => {
                    std::hint::black_box(ours_one(turn.start)?);
                    let t = Instant::now();
                    for q in turn.clone() {
                        let ex = ours_one(q)?;
                        ours.rows.push(
                            ex.hits
                                .iter()
                                .map(|h| h.id.as_uuid().as_u128() as u32)
                                .collect(),
                        );
                        let spent = [ex.filter_micros, ex.search_micros, ex.total_micros];
                        for (sum, us) in explain_us.iter_mut().zip(spent) {
                            *sum += us;
                        }
                        *plans.entry(ex.plan.name().to_string()).or_default() += 1;
                    }
                    ours.secs += t.elapsed().as_secs_f64();
                }
            }
        }
    }
    ours.explain_us = explain_us.map(|us| us as f64 / nq.max(1) as f64);
    ours.plan = if plans.len() == 1 {
        plans.into_keys().collect()
    } else {
        plans
            .iter()
            .map(|(p, c)| format!("{p}:{c}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok([exact, cb, ours])
}

/// Mean recall: the share of each ground-truth row list found (rows, not distances).
fn recall(got: &[Vec<u32>], gt: &[Vec<u32>]) -> f64 {
    let (mut found, mut wanted) = (0usize, 0usize);
    for (g, w) in got.iter().zip(gt) {
        wanted += w.len();
        found += w.iter().filter(|x| g.contains(x)).count();
    }
    if wanted == 0 {
        1.0
    } else {
        found as f64 / wanted as f64
    }
}

fn read_lines(path: &std::path::Path) -> Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .lines()
        .map(|l| l.trim().to_string())
        .collect())
}
