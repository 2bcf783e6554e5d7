//! What several commands use: opening the database file with a progress bar while an index is
//! rebuilt, progress bars, and the CLI's metric names.

use std::path::Path;

use anyhow::{Context, Result};
use hybridb::{Database, Metric};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::MetricArg;

/// A progress bar on stderr, hidden with `--json` (and by indicatif when stderr is not a
/// terminal).
pub fn bar(len: Option<u64>, json: bool, what: &str) -> ProgressBar {
    if json {
        return ProgressBar::hidden();
    }
    let template = match len {
        Some(_) => "{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})",
        None => "{msg} {spinner} {pos} ({per_sec})",
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let pb = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    pb.set_style(style);
    pb.set_message(what.to_string());
    pb
}

/// Opens the database file (creating its folder), with a progress bar while an index is
/// rebuilt.
pub fn open(file: &Path, json: bool) -> Result<Database> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data folder {}", dir.display()))?;
    }
    let pb = bar(None, json, "rebuilding index");
    pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    let pb2 = pb.clone();
    let db = Database::builder()
        .on_rebuild_progress(move |p| {
            if p.total > 10_000 && !json {
                pb2.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                pb2.set_length(p.total);
                pb2.set_position(p.done);
                pb2.set_message(format!("rebuilding index of {}", p.collection));
            }
        })
        .open(file)
        .map_err(|e| match e {
            hybridb::Error::AlreadyOpen { .. } => anyhow::Error::new(e).context(
                "is a `hybridb serve` using this data folder? Stop it first, or use its HTTP API",
            ),
            other => anyhow::Error::new(other).context(format!("opening {}", file.display())),
        })?;
    pb.finish_and_clear();
    Ok(db)
}

/// The library's metric for the CLI's `--metric` value.
pub fn metric(m: MetricArg) -> Metric {
    match m {
        MetricArg::Cosine => Metric::Cosine,
        MetricArg::Dot => Metric::Dot,
        MetricArg::L2 => Metric::L2,
        MetricArg::Manhattan => Metric::Manhattan,
    }
}
