//! `writes`: throughput and latency of single-entity upserts from many concurrent callers, to
//! show what the writer thread's group commit buys.
//!
//! For each caller count, a fresh database and collection; every caller upserts its own
//! entities (a small payload, a random vector) one call at a time and records each call's
//! latency. A baseline run with one caller and groups of one command
//! (`"mode":"commit-per-write"`: one transaction and one fsync per upsert) is measured in the
//! same run. This module talks to hybridb directly because it needs the writer's options.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Args;
use hybridb::{CollectionConfig, Database, Entity, EntityId, Metric};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use serde::Serialize;

use crate::engine::{Durability, IndexKind};
use crate::report::{emit, round};

/// Arguments of `writes`.
#[derive(Args, Debug)]
pub struct WritesArgs {
    /// Caller (thread) counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub callers: Vec<usize>,
    /// Vector dimension.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Write durability.
    #[arg(long, value_enum, default_value_t = Durability::Immediate)]
    pub durability: Durability,
    /// Index kind of the collection.
    #[arg(long, value_enum, default_value_t = IndexKind::Flat)]
    pub index: IndexKind,
    /// Upserts per run, shared among the callers (each caller does at least 20).
    #[arg(long, default_value_t = 2000)]
    pub ops: usize,
    /// Rounds, each measuring the baseline and then every caller count. An fsync's latency
    /// drifts over seconds on a shared disk, so each round's group-commit runs are compared
    /// with that round's baseline; the median of those ratios is reported, and the fastest
    /// run of each kind is printed.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Folder in which the temporary database directories are created (default: system temp).
    #[arg(long)]
    pub tmp_dir: Option<PathBuf>,
}

/// One line of `writes` output.
#[derive(Debug, Clone, Serialize)]
pub struct WritesRecord {
    /// Always `"writes"`.
    pub bench: &'static str,
    /// Index kind of the collection.
    pub index: &'static str,
    /// `none` or `immediate`.
    pub durability: &'static str,
    /// Concurrent callers.
    pub callers: usize,
    /// `group-commit` or `commit-per-write` (the baseline).
    pub mode: &'static str,
    /// Upserts done.
    pub ops: usize,
    /// Upserts per second over the whole run.
    pub ops_per_s: f64,
    /// Median call latency, microseconds.
    pub p50_us: f64,
    /// 99th percentile call latency, microseconds.
    pub p99_us: f64,
    /// Group commit only: the median over rounds of this run's rate over the same round's
    /// commit-per-write rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_to_commit_per_write: Option<f64>,
}

/// Runs the baseline, then one group-commit run per caller count.
pub fn run_writes(a: &WritesArgs) -> Result<()> {
    ensure!(a.dim > 0 && a.ops > 0, "sizes must be positive");
    ensure!(
        a.callers.iter().all(|&c| c > 0),
        "caller counts must be positive"
    );
    let mut baseline: Option<WritesRecord> = None;
    let mut best: Vec<Option<WritesRecord>> = vec![None; a.callers.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); a.callers.len()];
    let faster = |kept: &Option<WritesRecord>, r: &WritesRecord| {
        kept.as_ref().is_none_or(|k| r.ops_per_s > k.ops_per_s)
    };
    for _ in 0..a.rounds.max(1) {
        let base = run_one(a, 1, true)?;
        for (i, &callers) in a.callers.iter().enumerate() {
            let r = run_one(a, callers, false)?;
            ratios[i].push(r.ops_per_s / base.ops_per_s.max(f64::MIN_POSITIVE));
            if faster(&best[i], &r) {
                best[i] = Some(r);
            }
        }
        if faster(&baseline, &base) {
            baseline = Some(base);
        }
    }
    let Some(baseline) = baseline else {
        anyhow::bail!("no round ran");
    };
    emit(&baseline)?;
    for ((callers, r), mut ratios) in a.callers.iter().zip(best).zip(ratios) {
        let Some(mut r) = r else { continue };
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        eprintln!(
            "writes: {callers} callers: {median:.1}x the commit-per-write rate (median; rounds: {})",
            ratios
                .iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        r.ratio_to_commit_per_write = Some(round(median, 2));
        emit(&r)?;
    }
    Ok(())
}

fn run_one(a: &WritesArgs, callers: usize, one_per_commit: bool) -> Result<WritesRecord> {
    let dir = match &a.tmp_dir {
        Some(p) => tempfile::tempdir_in(p),
        None => tempfile::tempdir(),
    }
    .context("creating temporary directory")?;
    let mut builder = Database::builder().durability(match a.durability {
        Durability::None => hybridb::Durability::None,
        Durability::Immediate => hybridb::Durability::Immediate,
    });
    if one_per_commit {
        builder = builder.max_group_ops(1);
    }
    let db = builder.open(dir.path().join("writes.redb"))?;
    let index = match a.index {
        IndexKind::Flat => hybridb::IndexKind::Exact,
        IndexKind::Hnsw => hybridb::IndexKind::hnsw(),
    };
    let coll = db.create_collection(
        "w",
        CollectionConfig::new(a.dim as u32, Metric::L2).with_index(index),
    )?;
    let per_caller = (a.ops / callers).max(20);
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..callers)
            .map(|c| {
                let coll = coll.clone();
                let dim = a.dim;
                s.spawn(move || -> Result<Vec<Duration>> {
                    let mut rng = StdRng::seed_from_u64(c as u64);
                    let mut lat = Vec::with_capacity(per_caller);
                    for i in 0..per_caller {
                        let v: Vec<f32> = (0..dim).map(|_| rng.random::<f32>()).collect();
                        let e = Entity::new(
                            EntityId::new_v7(),
                            serde_json::json!({"caller": c, "i": i, "tag": "bench"}),
                            v,
                        );
                        let t = Instant::now();
                        coll.upsert(e)?;
                        lat.push(t.elapsed());
                    }
                    Ok(lat)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().map_err(|_| anyhow::anyhow!("caller panicked"))??);
        }
        Ok::<_, anyhow::Error>(all)
    })?;
    let secs = started.elapsed().as_secs_f64();
    let stats = db.writer_stats();
    eprintln!(
        "writes: {callers} callers: {} groups, {:.2} commands per group",
        stats.groups,
        stats.commands as f64 / stats.groups.max(1) as f64
    );
    drop(coll);
    db.close()?;
    let mut sorted = latencies;
    sorted.sort();
    let pct = |p: f64| {
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i].as_secs_f64() * 1e6
    };
    Ok(WritesRecord {
        bench: "writes",
        index: match a.index {
            IndexKind::Flat => "exact",
            IndexKind::Hnsw => "hnsw",
        },
        durability: a.durability.name(),
        callers,
        mode: if one_per_commit {
            "commit-per-write"
        } else {
            "group-commit"
        },
        ops: sorted.len(),
        ops_per_s: round(sorted.len() as f64 / secs, 1),
        p50_us: round(pct(0.5), 1),
        p99_us: round(pct(0.99), 1),
        ratio_to_commit_per_write: None,
    })
}
