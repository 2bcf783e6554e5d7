//! The commands other than `import` (see [`crate::import`]).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hybridb::{
    CollectionConfig, Database, EntityId, IndexKind, Metric, PayloadIndexKind, SearchRequest,
    VectorConfig,
};
use hybridb_server::{ApiKeys, CollectionOut, EntityOut, HitOut, ServerConfig, VerifyOut};
use serde_json::{Value, json};

use crate::cli::{
    AliasesCmd, Args, CollectionsCmd, Command, CreateArgs, ExportArgs, IndexArg, SearchArgs,
    ServeArgs,
};
use crate::common::{bar, metric, open};

/// Name of the database file inside the data folder.
pub const DB_FILE: &str = "hybridb.redb";

/// Runs a command; returns the process exit status.
pub fn run(args: Args) -> Result<i32> {
    let file = args.data.join(DB_FILE);
    let json = args.json;
    match args.command {
        Command::Serve(s) => serve(&args.data, &file, s),
        Command::Collections(c) => collections(&file, json, c),
        Command::Aliases(a) => aliases(&file, json, a),
        Command::Import(i) => crate::import::run(&args.data, &file, json, i),
        Command::Export(e) => export(&file, e),
        Command::Search(s) => search(&file, json, s),
        Command::Query(q) => query(&file, json, q),
        Command::Get { collection, id } => get(&file, json, &collection, &id),
        Command::Backup { path } => backup(&file, json, &path),
        Command::Restore { backup, force } => restore(&file, json, &backup, force),
        Command::Verify { repair } => verify(&file, json, repair),
        Command::Compact => compact(&file, json),
        Command::Stats => stats(&file, json),
        Command::Replicate(r) => crate::replicate::run(json, r),
    }
}

/// Prints `value` as JSON (compact with `--json`, else pretty).
fn print_json(value: &impl serde::Serialize, compact: bool) -> Result<()> {
    let text = if compact {
        serde_json::to_string(value)?
    } else {
        serde_json::to_string_pretty(value)?
    };
    println!("{text}");
    Ok(())
}

/// Opens an existing database (refuses to create one by accident).
fn open_existing(file: &Path, json: bool) -> Result<Database> {
    if !file.is_file() {
        bail!(
            "no database at {} (pass --data DIR, or import/create something first)",
            file.display()
        );
    }
    open(file, json)
}

fn serve(data: &Path, file: &Path, s: ServeArgs) -> Result<i32> {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    let db = open(file, false)?;
    let config = ServerConfig {
        api_keys: ApiKeys::from_env(),
        max_body_bytes: s.max_body_mib.saturating_mul(1 << 20),
        request_timeout: Duration::from_secs(s.request_timeout_secs.max(1)),
        max_concurrent_requests: s.max_concurrent_requests.max(1),
        backup_dir: Some(s.backup_dir.unwrap_or_else(|| data.join("backups"))),
        ..ServerConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let addr = SocketAddr::new(s.bind, s.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let local = listener.local_addr()?;
        println!("hybridb serving {} on http://{local}", file.display());
        let qdrant = if s.qdrant_port == 0 {
            None
        } else {
            let qdrant_addr = SocketAddr::new(s.bind, s.qdrant_port);
            let qdrant = tokio::net::TcpListener::bind(qdrant_addr)
                .await
                .with_context(|| {
                    format!(
                        "binding {qdrant_addr} for the Qdrant API (--qdrant-port 0 turns it off)"
                    )
                })?;
            println!("Qdrant-compatible API on http://{}", qdrant.local_addr()?);
            Some(qdrant)
        };
        std::io::stdout().flush()?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let sink = match &s.replicate_to {
            Some(to) => Some(tokio::spawn(crate::replicate::sink_task(
                format!("http://{local}"),
                to.clone(),
                s.sink.clone(),
                stop_rx,
            ))),
            None => None,
        };
        let shutdown = async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        };
        match qdrant {
            Some(qdrant) => {
                hybridb_server::serve_with_qdrant(db, config, listener, qdrant, shutdown).await?
            }
            None => hybridb_server::serve(db, config, listener, shutdown).await?,
        }
        if let Some(sink) = sink {
            sink.await.context("replication task")??;
        }
        anyhow::Ok(())
    })?;
    Ok(0)
}

/// Resolves on Ctrl-C or (Unix) SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

fn config_of(c: &CreateArgs) -> Result<CollectionConfig> {
    let mut config = CollectionConfig::new(c.dim, metric(c.metric));
    config = config.with_index(match c.index {
        IndexArg::Exact => IndexKind::Exact,
        IndexArg::Hnsw => IndexKind::Hnsw {
            m: c.m,
            ef_construction: c.ef_construction,
            ef: c.ef,
        },
    });
    config = config.with_quantization(c.quantization);
    for spec in &c.payload_indexes {
        let Some((field, kind)) = spec.split_once('=') else {
            bail!("--payload-index {spec:?}: expected FIELD=KIND");
        };
        let kind = match kind {
            "keyword" => PayloadIndexKind::Keyword,
            "integer" => PayloadIndexKind::Integer,
            "float" => PayloadIndexKind::Float,
            "bool" => PayloadIndexKind::Bool,
            "datetime" => PayloadIndexKind::Datetime,
            other => bail!(
                "--payload-index {spec:?}: unknown kind {other:?} (keyword, integer, float, bool, datetime)"
            ),
        };
        config = config.with_payload_index(field, kind);
    }
    for spec in &c.vectors {
        let (name, vector) = vector_spec(spec)?;
        config = config.with_vector(name, vector);
    }
    Ok(config)
}

/// Reads a `--vector NAME=SPEC` (see `CreateArgs::vectors`).
fn vector_spec(spec: &str) -> Result<(String, VectorConfig)> {
    let Some((name, kind)) = spec.split_once('=') else {
        bail!("--vector {spec:?}: expected NAME=SPEC");
    };
    let bad = |why: &str| anyhow::anyhow!("--vector {spec:?}: {why}");
    let config = if kind.trim_start().starts_with('{') {
        let v: hybridb_server::VectorSpec =
            hybridb_server::decode_json(kind.as_bytes(), 64).map_err(|e| bad(&e.message))?;
        v.to_config()
    } else {
        let parts: Vec<&str> = kind.split(':').collect();
        match parts.as_slice() {
            ["sparse"] => VectorConfig::sparse(false),
            ["sparse", "idf"] => VectorConfig::sparse(true),
            ["dense", dim] | ["dense", dim, _] => {
                let dim: u32 = dim.parse().map_err(|_| bad("DIM is not a number"))?;
                let m = match parts.get(2).copied().unwrap_or("cosine") {
                    "cosine" => Metric::Cosine,
                    "dot" => Metric::Dot,
                    "l2" => Metric::L2,
                    "manhattan" => Metric::Manhattan,
                    other => {
                        return Err(bad(&format!(
                            "unknown metric {other:?} (cosine, dot, l2, manhattan)"
                        )));
                    }
                };
                VectorConfig::dense(dim, m)
            }
            _ => {
                return Err(bad(
                    "expected dense:DIM[:METRIC], sparse[:idf] or a JSON vector spec",
                ));
            }
        }
    };
    Ok((name.to_string(), config))
}

fn aliases(file: &Path, json: bool, cmd: AliasesCmd) -> Result<i32> {
    let db = open(file, json)?;
    match cmd {
        AliasesCmd::List => {
            let list = db.aliases();
            if json {
                let out: Vec<Value> = list
                    .iter()
                    .map(|a| json!({"alias": a.alias, "collection": a.collection}))
                    .collect();
                print_json(&json!({ "aliases": out }), true)?;
            } else if list.is_empty() {
                println!("no aliases");
            } else {
                for a in list {
                    println!("{}\t-> {}", a.alias, a.collection);
                }
            }
        }
        AliasesCmd::Set { alias, collection } => {
            let previous = db.set_alias(&alias, &collection)?;
            if json {
                print_json(
                    &json!({"alias": alias, "collection": collection, "previous": previous}),
                    true,
                )?;
            } else {
                match previous {
                    Some(p) => println!("alias {alias} -> {collection} (was {p})"),
                    None => println!("alias {alias} -> {collection}"),
                }
            }
        }
        AliasesCmd::Delete { alias } => {
            let target = db.delete_alias(&alias)?;
            if json {
                print_json(&json!({"alias": alias, "collection": target}), true)?;
            } else {
                println!("deleted alias {alias} (was -> {target})");
            }
        }
    }
    Ok(0)
}

fn collections(file: &Path, json: bool, cmd: CollectionsCmd) -> Result<i32> {
    match cmd {
        CollectionsCmd::List => {
            let db = open(file, json)?;
            let mut out = Vec::new();
            for info in db.collections() {
                let count = db.collection(&info.name)?.count()?;
                let mut c = CollectionOut::new(info.name, &info.config, info.created_at);
                c.count = Some(count);
                out.push(c);
            }
            if json {
                print_json(&json!({ "collections": out }), true)?;
            } else if out.is_empty() {
                println!("no collections");
            } else {
                for c in out {
                    let named: Vec<String> = c.config["vectors"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| format!("{k}:{}", v["type"].as_str().unwrap_or("?")))
                                .collect()
                        })
                        .unwrap_or_default();
                    let named = match named.is_empty() {
                        true => String::new(),
                        false => format!("\tvectors {}", named.join(",")),
                    };
                    println!(
                        "{}\tdim {}\t{}\t{}\t{} entities{named}",
                        c.name,
                        c.config["dim"],
                        c.config["metric"].as_str().unwrap_or("?"),
                        c.config["index"]["kind"].as_str().unwrap_or("?"),
                        c.count.unwrap_or(0)
                    );
                }
            }
        }
        CollectionsCmd::Create(c) => {
            let config = config_of(&c)?;
            let db = open(file, json)?;
            db.create_collection(&c.name, config)?;
            if json {
                let info = db
                    .collections()
                    .into_iter()
                    .find(|i| i.name == c.name)
                    .context("the collection was dropped meanwhile")?;
                print_json(
                    &CollectionOut::new(info.name, &info.config, info.created_at),
                    true,
                )?;
            } else {
                println!("created collection {}", c.name);
            }
        }
        CollectionsCmd::Quantize {
            name,
            quantization,
            vector,
        } => {
            let db = open_existing(file, json)?;
            let c = db.collection(&name)?;
            let changed = c.set_quantization(&vector, quantization)?;
            if json {
                print_json(
                    &json!({"name": name, "vector": vector, "changed": changed,
                        "config": c.config()}),
                    true,
                )?;
            } else {
                let what = if vector.is_empty() {
                    "default vector"
                } else {
                    &vector
                };
                let verb = if changed { "set" } else { "retrained" };
                // What was stored (`auto` resolved for this vector).
                let config = c.config();
                let now = if vector.is_empty() {
                    Some(config.quantization)
                } else {
                    match config.vectors.get(&vector) {
                        Some(hybridb::VectorConfig::Dense { quantization, .. }) => {
                            Some(*quantization)
                        }
                        _ => None,
                    }
                };
                let now = now.unwrap_or(quantization);
                println!("{name}: {what} quantization {verb} to {}", now.name());
            }
        }
        CollectionsCmd::Drop { name } => {
            let db = open_existing(file, json)?;
            db.drop_collection(&name)?;
            if json {
                print_json(&json!({"name": name, "dropped": true}), true)?;
            } else {
                println!("dropped collection {name}");
            }
        }
    }
    Ok(0)
}

fn export(file: &Path, e: ExportArgs) -> Result<i32> {
    let filter = parse_filter(e.filter.as_deref())?;
    let db = open_existing(file, true)?;
    let coll = db.collection(&e.collection)?;
    let total = match &filter {
        Some(f) => coll.count_where(f)?,
        None => coll.count()?,
    };
    let to_stdout = e.out.is_none();
    let mut out: Box<dyn Write> = match &e.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    // With output on stdout, the bar still goes to stderr.
    let pb = bar(Some(total), false, "exporting");
    let mut after: Option<EntityId> = None;
    let mut written = 0u64;
    loop {
        let page = match &filter {
            Some(f) => coll.scroll_where(f, after, 1000)?,
            None => coll.scroll(after, 1000)?,
        };
        for r in page.records {
            let line = serde_json::to_string(&EntityOut::new(r, !e.no_vector))?;
            writeln!(out, "{line}")?;
            written += 1;
        }
        pb.set_position(written);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    out.flush()?;
    pb.finish_and_clear();
    if !to_stdout {
        eprintln!("exported {written} entities");
    }
    Ok(0)
}

/// Parses a `--filter` (the HTTP API's JSON form).
fn parse_filter(s: Option<&str>) -> Result<Option<hybridb::Filter>> {
    s.map(|s| {
        hybridb_server::decode_json(s.as_bytes(), 64)
            .map_err(|e| anyhow::anyhow!("--filter: {}", e.message))
    })
    .transpose()
}

/// Parses `[1,2]` or `1,2`.
fn parse_vector(s: &str) -> Result<Vec<f32>> {
    let t = s.trim();
    if t.starts_with('[') {
        return serde_json::from_str(t).context("--vector: not a JSON array of numbers");
    }
    t.split(',')
        .map(|x| {
            x.trim()
                .parse::<f32>()
                .with_context(|| format!("--vector: {x:?} is not a number"))
        })
        .collect()
}

fn search(file: &Path, json: bool, s: SearchArgs) -> Result<i32> {
    let filter = parse_filter(s.filter.as_deref())?;
    let req = if s.vector.trim_start().starts_with('{') {
        let sparse: hybridb_server::SparseIn = hybridb_server::decode_json(s.vector.as_bytes(), 64)
            .map_err(|e| anyhow::anyhow!("--vector: {}", e.message))?;
        if s.using.is_empty() {
            bail!("--vector: a sparse vector needs --using (the name of a sparse vector)");
        }
        SearchRequest::new_sparse(&s.using, sparse.0, s.k)
    } else {
        SearchRequest::new(parse_vector(&s.vector)?, s.k).using(&s.using)
    };
    if s.target.is_some() && !s.using.is_empty() {
        bail!("--using: named vectors are not replicated; search the database file");
    }
    let mut req = req.with_payload(s.with_payload).with_vector(s.with_vector);
    if let Some(ef) = s.ef {
        req = req.ef(ef);
    }
    if let Some(f) = filter {
        req = req.filter(f);
    }
    let found = match &s.target {
        Some(url) => crate::replicate::search_target(url, &s.target_schema, &s.collection, &req)?,
        None => open_existing(file, json)?
            .collection(&s.collection)?
            .search_with(&req)?,
    };
    print_hits(found, json)
}

/// `hybridb query`: a query body (inline JSON or `@file`) run on the database file.
fn query(file: &Path, json: bool, q: crate::cli::QueryArgs) -> Result<i32> {
    let text = match q.query.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => q.query.clone(),
    };
    let body: hybridb_server::QueryBody = hybridb_server::decode_json(text.as_bytes(), 64)
        .map_err(|e| anyhow::anyhow!("query: {}", e.message))?;
    let found = open_existing(file, json)?
        .collection(&q.collection)?
        .query(&body.into_query())?;
    print_hits(found, json)
}

/// Prints hits as JSON (`{"hits": [...]}`) or one line each.
fn print_hits(found: Vec<hybridb::Hit>, json: bool) -> Result<i32> {
    let hits: Vec<HitOut> = found.into_iter().map(HitOut::from).collect();
    if json {
        print_json(&json!({ "hits": hits }), true)?;
    } else if hits.is_empty() {
        println!("no hits");
    } else {
        for (i, h) in hits.iter().enumerate() {
            let mut line = format!("{:>3}. {}  score {:.6}", i + 1, h.id, h.score);
            if let Some(p) = &h.payload {
                line.push_str(&format!("  {}", Value::Object(p.clone())));
            }
            if let Some(v) = &h.vector {
                line.push_str(&format!("  {}", serde_json::to_string(v)?));
            }
            if let Some(v) = &h.vectors {
                line.push_str(&format!("  {}", serde_json::to_string(v)?));
            }
            println!("{line}");
        }
    }
    Ok(0)
}

fn get(file: &Path, json: bool, collection: &str, id: &str) -> Result<i32> {
    let id: EntityId = id.parse()?;
    let db = open_existing(file, json)?;
    match db.collection(collection)?.get(id)? {
        Some(r) => {
            print_json(&EntityOut::new(r, true), json)?;
            Ok(0)
        }
        None => bail!("entity {id} not found in collection {collection:?}"),
    }
}

fn backup(file: &Path, json: bool, path: &PathBuf) -> Result<i32> {
    let db = open_existing(file, json)?;
    let pb = bar(None, json, "copying rows");
    let info = db.backup(path, |n| pb.set_position(n))?;
    pb.finish_and_clear();
    if json {
        print_json(
            &json!({"path": path, "seq": info.seq, "entities": info.entities,
                    "checkpoints": info.checkpoints}),
            true,
        )?;
    } else {
        println!(
            "backup {} holds {} entities up to change {} ({} index checkpoints)",
            path.display(),
            info.entities,
            info.seq,
            info.checkpoints
        );
    }
    Ok(0)
}

fn print_report(report: VerifyOut, json: bool) -> Result<i32> {
    let clean = report.clean;
    if json {
        print_json(&report, true)?;
    } else {
        for c in &report.collections {
            let state = if c.problems.is_empty() {
                "ok"
            } else {
                "PROBLEMS"
            };
            println!("{}\t{} entities\t{state}", c.name, c.entities);
            for p in &c.problems {
                println!("  - {p}");
            }
        }
        for p in &report.problems {
            println!("change log: {p}");
        }
        println!(
            "{} ({} change events)",
            if clean { "clean" } else { "problems found" },
            report.changes
        );
    }
    Ok(if clean { 0 } else { 2 })
}

fn restore(file: &Path, json: bool, backup: &Path, force: bool) -> Result<i32> {
    if file.exists() && !force {
        bail!(
            "{} exists; pass --force to replace it with the backup",
            file.display()
        );
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let report = Database::restore(backup, file, force)
        .with_context(|| format!("restoring {} to {}", backup.display(), file.display()))?;
    if !json {
        println!("restored {} to {}", backup.display(), file.display());
    }
    print_report(VerifyOut::from(report), json)
}

fn verify(file: &Path, json: bool, repair: bool) -> Result<i32> {
    let db = open_existing(file, json)?;
    let report = if repair {
        db.verify_and_repair()?
    } else {
        db.verify()?
    };
    print_report(VerifyOut::from(report), json)
}

fn compact(file: &Path, json: bool) -> Result<i32> {
    let db = open_existing(file, json)?;
    let before = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    db.compact()?;
    drop(db);
    let after = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    if json {
        print_json(&json!({"bytes_before": before, "bytes_after": after}), true)?;
    } else {
        println!("compacted {}: {before} -> {after} bytes", file.display());
    }
    Ok(0)
}

fn stats(file: &Path, json: bool) -> Result<i32> {
    let db = open_existing(file, json)?;
    let mut collections = Vec::new();
    for info in db.collections() {
        let c = db.collection(&info.name)?;
        collections.push(json!({
            "name": info.name,
            "count": c.count()?,
            "indexed": c.indexed_count(),
            "index_memory_bytes": c.index_memory_bytes(),
            "unlinked": c.unlinked_count(),
            "config": info.config,
        }));
    }
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let out = json!({
        "path": file,
        "file_bytes": size,
        "last_seq": db.last_seq()?,
        "collections": collections,
    });
    if json {
        print_json(&out, true)?;
    } else {
        println!("{} ({size} bytes)", file.display());
        println!("last change: {}", out["last_seq"]);
        for c in &collections {
            println!(
                "{}\t{} entities\t{} indexed\t{} index bytes",
                c["name"].as_str().unwrap_or("?"),
                c["count"],
                c["indexed"],
                c["index_memory_bytes"]
            );
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_parse_both_ways() {
        assert_eq!(parse_vector("[1, 2.5]").unwrap(), vec![1.0, 2.5]);
        assert_eq!(parse_vector("1, -2").unwrap(), vec![1.0, -2.0]);
        assert!(parse_vector("1,x").is_err());
        assert!(parse_vector("[1,").is_err());
    }
}
