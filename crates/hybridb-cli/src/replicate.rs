//! `hybridb replicate`, `serve --replicate-to` and `search --target`: the CLI over
//! `hybridb-replicate` (a sink from a server's change feed into PostgreSQL + pgvector or
//! Citus, and hybridb's search run there).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hybridb::{Hit, SearchRequest};
use hybridb_replicate::{
    Distribution, HttpSource, PgOptions, PgTarget, Progress, Sink, SinkConfig,
};
use serde_json::json;
use tokio::sync::watch;

use crate::cli::{DistributionArg, ReplicateArgs, SinkArgs};

/// The key the sink sends to the server: HYBRIDB_REPLICATE_API_KEY, else the first of
/// HYBRIDB_READ_API_KEY, else the first of HYBRIDB_API_KEY.
fn source_key() -> Option<String> {
    [
        "HYBRIDB_REPLICATE_API_KEY",
        "HYBRIDB_READ_API_KEY",
        "HYBRIDB_API_KEY",
    ]
    .iter()
    .filter_map(|v| std::env::var(v).ok())
    .filter_map(|keys| {
        keys.split(',')
            .map(str::trim)
            .find(|k| !k.is_empty())
            .map(str::to_string)
    })
    .next()
}

fn sink_parts(to: &str, args: &SinkArgs) -> (PgTarget, SinkConfig) {
    let mut opts = PgOptions::new(to);
    opts.schema = args.schema.clone();
    opts.distribution = match args.distribution {
        DistributionArg::Auto => Distribution::Auto,
        DistributionArg::Local => Distribution::Local,
        DistributionArg::Id => Distribution::ById,
    };
    let config = SinkConfig {
        name: args.sink_name.clone(),
        collections: args.collections.clone(),
        batch_events: args.batch_events.max(1),
        copy_page: args.copy_page.clamp(1, 10_000),
        resync: args.resync,
        ..SinkConfig::default()
    };
    (PgTarget::new(opts), config)
}

/// The sink of `serve --replicate-to`, reading this server's own feed at `from`; ends when
/// `stop` turns true.
pub async fn sink_task(
    from: String,
    to: String,
    args: SinkArgs,
    stop: watch::Receiver<bool>,
) -> Result<()> {
    let (target, config) = sink_parts(&to, &args);
    let observer: hybridb_replicate::Observer = Arc::new(|p: &Progress| match p {
        Progress::CopyDone {
            snapshot_seq, rows, ..
        } => tracing::info!(snapshot_seq, rows, "replication: initial copy done"),
        Progress::Retrying { error, attempt, .. } => {
            tracing::warn!(%error, attempt, "replication: retrying")
        }
        _ => {}
    });
    Sink::new(HttpSource::new(&from, source_key()), target, config, stop)
        .observe(observer)
        .run()
        .await
        .context("replication")
}

/// `hybridb replicate`: runs until SIGTERM or Ctrl-C; exit status 1 on an error that waiting
/// cannot fix (the message says which).
pub fn run(json: bool, r: ReplicateArgs) -> Result<i32> {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (target, config) = sink_parts(&r.to, &r.sink);
    let bar = crate::common::bar(None, json, "initial copy");
    let observer: hybridb_replicate::Observer = Arc::new(move |p: &Progress| {
        if json {
            if let Some(line) = progress_json(p) {
                println!("{line}");
            }
            return;
        }
        match p {
            Progress::Copying {
                collection,
                done,
                total,
            } => {
                if let Some(t) = total {
                    bar.set_length(*t);
                }
                bar.set_position(*done);
                bar.set_message(format!("copying {collection}"));
            }
            Progress::CopyDone {
                snapshot_seq,
                rows,
                load_secs,
                index_secs,
            } => {
                bar.finish_and_clear();
                eprintln!(
                    "initial copy at seq {snapshot_seq}: {rows} entities in {load_secs:.1} s, \
                     vector indexes in {index_secs:.1} s; following the feed"
                );
            }
            Progress::Retrying {
                error,
                attempt,
                wait,
            } => eprintln!("retry {attempt} in {} ms: {error}", wait.as_millis()),
            _ => {}
        }
    });
    let from = r.from.clone();
    rt.block_on(async move {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            crate::commands::shutdown_signal().await;
            let _ = stop_tx.send(true);
        });
        Sink::new(
            HttpSource::new(&from, source_key()),
            target,
            config,
            stop_rx,
        )
        .observe(observer)
        .run()
        .await
    })
    .with_context(|| format!("replicating {} into the target", r.from))?;
    Ok(0)
}

/// One JSON line per progress report (`--json`), for scripts and benchmarks.
fn progress_json(p: &Progress) -> Option<String> {
    let v = match p {
        Progress::CopyStarted { snapshot_seq } => {
            json!({"event": "copy_started", "snapshot_seq": snapshot_seq})
        }
        Progress::Copying {
            collection,
            done,
            total,
        } => json!({"event": "copying", "collection": collection, "done": done, "total": total}),
        Progress::CopyDone {
            snapshot_seq,
            rows,
            load_secs,
            index_secs,
        } => json!({"event": "copy_done", "snapshot_seq": snapshot_seq, "rows": rows,
                    "load_secs": load_secs, "index_secs": index_secs}),
        Progress::Applied {
            applied,
            events,
            lags_ms,
        } => json!({"event": "applied", "applied": applied, "events": events, "lags_ms": lags_ms}),
        Progress::Idle { applied } => json!({"event": "idle", "applied": applied}),
        Progress::Retrying {
            error,
            attempt,
            wait,
        } => json!({"event": "retrying", "error": error, "attempt": attempt,
                    "wait_ms": wait.as_millis() as u64}),
        _ => return None,
    };
    Some(v.to_string())
}

/// `hybridb search --target URL`: the same request run on a replication target.
pub fn search_target(
    url: &str,
    schema: &str,
    collection: &str,
    req: &SearchRequest,
) -> Result<Vec<Hit>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let mut client =
            tokio::time::timeout(Duration::from_secs(30), hybridb_replicate::connect(url))
                .await
                .context("connecting to the target timed out")??;
        Ok(hybridb_replicate::query::search(&mut client, schema, collection, req).await?)
    })
}
