//! `hybridb import`: JSON lines or .fvecs/.bvecs into a collection, in batches (one
//! transaction each), with a progress bar, resumable, reporting bad records by line number.
//!
//! Resuming: after each committed batch the number of records handled (lines of a JSON-lines
//! file, vectors of a .fvecs/.bvecs file) is written to a small state file in
//! `DATA/imports/`; a later run of the same import skips them (unless `--restart` or
//! `--skip N`). Records are handled in order, so "the first N records" is exact. A finished
//! import deletes its state file. Ids from keys (`key`, or the row number for vector files)
//! are deterministic, so re-importing records is harmless either way.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hybridb::{Collection, CollectionConfig, Entity, EntityId, Metric};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cli::ImportArgs;
use crate::common::{bar, metric, open};

/// Bad records listed in the `--json` summary (the count covers all).
const MAX_LISTED: usize = 1000;

/// What the state file records.
#[derive(Debug, Serialize, Deserialize)]
struct ImportState {
    input: PathBuf,
    collection: String,
    done: u64,
}

fn state_path(data: &Path, collection: &str, input: &Path) -> PathBuf {
    let name: String = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    data.join("imports")
        .join(format!("{collection}--{name}.state"))
}

fn save_state(path: &Path, state: &ImportState) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(state)?)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// One record of the input: its number (1-based line, or 0-based row), and the entity or
/// why it is bad.
type Item = (u64, Result<Entity, String>);

/// Reads records in order; `progress` reports bytes or rows consumed.
enum Source {
    Lines {
        reader: BufReader<File>,
        line: u64,
        bytes: u64,
    },
    Vecs {
        reader: BufReader<File>,
        bytes_per_component: usize,
        row: u64,
        payloads: Option<(BufReader<File>, u64)>,
        key_prefix: String,
    },
}

impl Source {
    fn open(a: &ImportArgs) -> Result<(Source, u64)> {
        let f = File::open(&a.file).with_context(|| format!("opening {}", a.file.display()))?;
        let size = f.metadata()?.len();
        let ext = a
            .file
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        let bytes_per_component = match ext.as_deref() {
            Some("fvecs") => 4,
            Some("bvecs") => 1,
            _ => {
                if a.payloads.is_some() {
                    bail!("--payloads goes with .fvecs/.bvecs input only");
                }
                let src = Source::Lines {
                    reader: BufReader::new(f),
                    line: 0,
                    bytes: 0,
                };
                return Ok((src, size));
            }
        };
        let payloads = match &a.payloads {
            Some(p) => Some((
                BufReader::new(File::open(p).with_context(|| format!("opening {}", p.display()))?),
                0,
            )),
            None => None,
        };
        // Rows in all, from the first row's dimension (every row has the same size).
        let total = {
            let mut head = [0u8; 4];
            let mut first = File::open(&a.file)?;
            if size >= 4 {
                first.read_exact(&mut head)?;
                let dim = i64::from(i32::from_le_bytes(head)).max(1) as u64;
                size / (4 + dim * bytes_per_component as u64)
            } else {
                0
            }
        };
        let reader = BufReader::new(f);
        let src = Source::Vecs {
            reader,
            bytes_per_component,
            row: 0,
            payloads,
            key_prefix: a.key_prefix.clone(),
        };
        Ok((src, total))
    }

    /// Position for the progress bar (bytes for JSON lines, rows for vectors).
    fn progress(&self) -> u64 {
        match self {
            Source::Lines { bytes, .. } => *bytes,
            Source::Vecs { row, .. } => *row,
        }
    }

    /// The next record; `Ok(None)` at the end; `Err` when the input cannot be read on (a
    /// truncated or damaged vector file).
    fn next(&mut self) -> Result<Option<Item>> {
        match self {
            Source::Lines {
                reader,
                line,
                bytes,
            } => {
                let mut text = String::new();
                let n = reader.read_line(&mut text)?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                *bytes += n as u64;
                if text.trim().is_empty() {
                    // Blank lines count as records (so that skipping stays exact) but
                    // produce nothing.
                    return Ok(Some((*line, Err(String::new()))));
                }
                Ok(Some((*line, parse_line(&text))))
            }
            Source::Vecs {
                reader,
                bytes_per_component,
                row,
                payloads,
                key_prefix,
            } => {
                let mut head = [0u8; 4];
                match reader.read_exact(&mut head) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                    Err(e) => return Err(e.into()),
                }
                let n = *row;
                let dim = i32::from_le_bytes(head);
                if dim <= 0 || dim > hybridb::MAX_DIM as i32 {
                    bail!("row {n}: bad dimension header {dim}; the file is damaged");
                }
                let mut buf = vec![0u8; dim as usize * *bytes_per_component];
                reader
                    .read_exact(&mut buf)
                    .with_context(|| format!("row {n}: truncated vector"))?;
                let vector: Vec<f32> = if *bytes_per_component == 4 {
                    buf.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect()
                } else {
                    buf.iter().map(|&b| f32::from(b)).collect()
                };
                *row += 1;
                let payload = match payloads {
                    None => Ok(Value::Object(Default::default())),
                    Some((r, line)) => {
                        let mut text = String::new();
                        *line += 1;
                        match r.read_line(&mut text) {
                            Ok(0) => Err(format!("the payloads file has no line {line}")),
                            Ok(_) => serde_json::from_str::<Value>(&text)
                                .map_err(|e| format!("payloads file line {line}: {e}")),
                            Err(e) => Err(format!("payloads file line {line}: {e}")),
                        }
                    }
                };
                let id = EntityId::from_key(&format!("{key_prefix}{n}"));
                Ok(Some((n, payload.map(|p| Entity::new(id, p, vector)))))
            }
        }
    }
}

/// One JSON line: the HTTP API's entity (`{id?, key?, payload?, vector?, vectors?}`: the
/// default vector, absent in a collection without one, and the named dense and sparse ones),
/// plus the `version` and `updated_at` that `hybridb export` writes (ignored: the import makes
/// new versions), so that an export imports as is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default)]
    id: Option<EntityId>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    payload: Option<Value>,
    #[serde(default)]
    vector: Option<Vec<f32>>,
    #[serde(default)]
    vectors: BTreeMap<String, hybridb_server::NamedVectorIn>,
    #[serde(default, rename = "version")]
    _version: Option<u64>,
    #[serde(default, rename = "updated_at")]
    _updated_at: Option<u64>,
}

/// Parses one line, naming the bad field in errors.
fn parse_line(text: &str) -> Result<Entity, String> {
    let e: Line = hybridb_server::decode_json(text.as_bytes(), 64).map_err(|e| e.message)?;
    let vectors = e.vectors.into_iter().map(|(k, v)| (k, v.0)).collect();
    hybridb_server::entity_of(
        e.id,
        e.key,
        e.payload,
        e.vector.unwrap_or_default(),
        vectors,
    )
    .map_err(String::from)
}

/// Bad records seen, and how they are reported.
struct Report {
    bad: u64,
    listed: Vec<Value>,
    json: bool,
    strict: bool,
    unit: &'static str,
}

impl Report {
    fn bad(&mut self, pb: &indicatif::ProgressBar, at: u64, why: &str) -> Result<()> {
        self.bad += 1;
        if self.strict {
            bail!("{} {at}: {why} (stopping: --strict)", self.unit);
        }
        if self.json {
            if self.listed.len() < MAX_LISTED {
                self.listed.push(json!({ self.unit: at, "error": why }));
            }
        } else {
            pb.suspend(|| eprintln!("{} {at}: {why}", self.unit));
        }
        Ok(())
    }
}

/// Writes a batch; an invalid entity is reported and left out, and the rest retried.
fn flush(
    coll: &Collection,
    batch: &mut Vec<(u64, Entity)>,
    report: &mut Report,
    pb: &indicatif::ProgressBar,
) -> Result<u64> {
    loop {
        if batch.is_empty() {
            return Ok(0);
        }
        let entities: Vec<Entity> = batch.iter().map(|(_, e)| e.clone()).collect();
        match coll.upsert_batch(entities) {
            Ok(w) => {
                batch.clear();
                return Ok(w.len() as u64);
            }
            Err(hybridb::Error::InvalidEntity { index, problem, .. }) if index < batch.len() => {
                let (at, _) = batch.remove(index);
                report.bad(pb, at, &problem.to_string())?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Runs an import; see the module docs.
pub fn run(data: &Path, file: &Path, json: bool, a: ImportArgs) -> Result<i32> {
    if a.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let db = open(file, json)?;
    let coll = match (db.collection(&a.collection), a.dim) {
        (Ok(c), _) => c,
        (Err(hybridb::Error::CollectionNotFound(_)), Some(dim)) => {
            let m: Metric = metric(a.metric);
            db.create_collection(&a.collection, CollectionConfig::new(dim, m))?
        }
        (Err(hybridb::Error::CollectionNotFound(name)), None) => bail!(
            "collection {name:?} not found: create it (`hybridb collections create`) or pass --dim"
        ),
        (Err(e), _) => return Err(e.into()),
    };
    let input = std::path::absolute(&a.file).unwrap_or_else(|_| a.file.clone());
    let state_file = state_path(data, &a.collection, &a.file);
    let recorded = std::fs::read(&state_file)
        .ok()
        .and_then(|b| serde_json::from_slice::<ImportState>(&b).ok())
        .filter(|s| s.input == input && s.collection == a.collection);
    let skip = match (a.skip, a.restart, &recorded) {
        (Some(n), _, _) => n,
        (None, false, Some(s)) => {
            if !json {
                eprintln!(
                    "resuming after record {} (pass --restart to start over)",
                    s.done
                );
            }
            s.done
        }
        _ => 0,
    };
    let (mut source, total) = Source::open(&a)?;
    let unit = match source {
        Source::Lines { .. } => "line",
        Source::Vecs { .. } => "row",
    };
    let pb = bar(Some(total), json, "importing");
    let mut report = Report {
        bad: 0,
        listed: Vec::new(),
        json,
        strict: a.strict,
        unit,
    };
    let mut done = 0u64;
    let mut imported = 0u64;
    let mut batch: Vec<(u64, Entity)> = Vec::with_capacity(a.batch);
    let mut ids: HashSet<EntityId> = HashSet::new();
    let dim = coll.config().dim as usize;
    let save = |done: u64| {
        save_state(
            &state_file,
            &ImportState {
                input: input.clone(),
                collection: a.collection.clone(),
                done,
            },
        )
    };
    while let Some((at, item)) = source.next()? {
        done += 1;
        if done <= skip {
            continue;
        }
        match item {
            Err(why) if why.is_empty() => {}
            Err(why) => report.bad(&pb, at, &why)?,
            Ok(entity) if entity.vector.len() != dim => {
                let why = match entity.vector.len() {
                    0 => format!(
                        "missing `vector` (the collection's default vector, dimension {dim})"
                    ),
                    n if dim == 0 => format!(
                        "`vector` of dimension {n} given, but the collection has no default \
                         vector: give its named `vectors` only"
                    ),
                    n => format!("vector has dimension {n}, collection expects {dim}"),
                };
                report.bad(&pb, at, &why)?;
            }
            Ok(entity) => {
                // A repeated id starts a new batch: the later record wins, as in the file.
                if !ids.insert(entity.id) {
                    imported += flush(&coll, &mut batch, &mut report, &pb)?;
                    ids.clear();
                    ids.insert(entity.id);
                }
                batch.push((at, entity));
            }
        }
        if batch.len() >= a.batch {
            imported += flush(&coll, &mut batch, &mut report, &pb)?;
            ids.clear();
            // Everything up to this record is handled.
            save(done)?;
            pb.set_position(source.progress());
        }
    }
    imported += flush(&coll, &mut batch, &mut report, &pb)?;
    pb.set_position(source.progress());
    pb.finish_and_clear();
    let _ = std::fs::remove_file(&state_file);
    let skipped = skip.min(done);
    if json {
        let summary = json!({
            "collection": a.collection,
            "imported": imported,
            "bad": report.bad,
            "skipped": skipped,
            "records": done,
            "errors": report.listed,
        });
        println!("{summary}");
    } else {
        let mut line = format!("imported {imported} entities into {}", a.collection);
        if skipped > 0 {
            line.push_str(&format!(", skipped the first {skipped} records"));
        }
        if report.bad > 0 {
            line.push_str(&format!(", {} bad records (listed above)", report.bad));
        }
        println!("{line}");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_named_errors() {
        let e = parse_line(r#"{"key":"a","payload":{"x":1},"vector":[1,2]}"#).unwrap();
        assert_eq!(e.id, EntityId::from_key("a"));
        assert!(
            parse_line(r#"{"vector":[1,"x"]}"#)
                .unwrap_err()
                .contains("vector[1]")
        );
        assert!(
            parse_line(r#"{"id":"x","vector":[1]}"#)
                .unwrap_err()
                .contains("id")
        );
        assert!(parse_line("nope").is_err());
    }
}
