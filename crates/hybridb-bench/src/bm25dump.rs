//! `bm25-dump`: writes what an outside BM25 implementation needs to check hybridb's scores —
//! every document's analyzed terms, and for each of the first `--queries` labeled queries its
//! terms and hybridb's top-100 `(slot, score)` — as JSON lines. `scripts/bm25/check-reference.sh`
//! scores the same term lists with a reference implementation (`bm25s`, Lucene's BM25) and
//! compares.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use hybridb::index::bm25::{Bm25Index, Bm25Params};
use hybridb::index::text::{Analyzer, Language, Tokenizer};
use serde_json::json;

use crate::labeled::read_labeled;
use crate::sparse::read_corpus;

/// Arguments of `bm25-dump`.
#[derive(Args, Debug)]
pub struct Bm25DumpArgs {
    /// The corpus: JSON lines with a `text` field per paragraph.
    #[arg(long, default_value = "../shared/data/pydoc/corpus.jsonl.gz")]
    pub corpus: PathBuf,
    /// Labeled queries (JSON lines with `query`).
    #[arg(long, default_value = "../shared/data/pydoc/section_queries.jsonl.gz")]
    pub labeled: PathBuf,
    /// Queries to dump.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Where to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// Writes the dump.
pub fn run_bm25_dump(a: &Bm25DumpArgs) -> Result<()> {
    let corpus = read_corpus(&a.corpus)?;
    let labeled = read_labeled(&a.labeled)?;
    let analyzer = Analyzer::new(Tokenizer::Unicode)
        .with_stop_words(Language::English)
        .with_stemming(Language::English);
    let params = Bm25Params::default();
    let mut index = Bm25Index::new(params);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&a.out)?);
    writeln!(
        out,
        "{}",
        json!({"k1": params.k1, "b": params.b, "docs": corpus.len()})
    )?;
    for (slot, (text, _)) in corpus.iter().enumerate() {
        let terms = analyzer.terms(text);
        writeln!(out, "{}", json!({"terms": terms}))?;
        index.insert(slot as u32, &terms);
    }
    for l in labeled.iter().take(a.queries) {
        let terms = analyzer.terms(&l.query);
        let top = index.search(&terms, 100, &|_| true);
        writeln!(out, "{}", json!({"terms": terms, "top": top}))?;
    }
    out.flush()?;
    Ok(())
}
