//! Labeled query sets and their scoring, shared by `text` and `hybrid`.
//!
//! The format is `../shared/data/pydoc/section_queries.jsonl.gz`: one JSON line per query,
//! `{"query": text, "relevant": [base row ids]}` (optionally gzipped). Relevance is binary; a
//! ranked list is scored by nDCG@10 (ideal DCG over `min(|relevant|, 10)` hits) and recall@100
//! (share of the relevant rows in the top 100), averaged over the queries — the scoring of the
//! data set's README.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};

use crate::report::round;
use crate::sparse::open_lines;

/// A labeled query: its text and the base rows relevant to it.
pub struct Labeled {
    /// The query text.
    pub query: String,
    /// Relevant base rows (0-based).
    pub relevant: HashSet<u32>,
}

/// Reads a labeled query set (see the module docs for the format).
pub fn read_labeled(path: &PathBuf) -> Result<Vec<Labeled>> {
    let reader = open_lines(path)?;
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("line {}", i + 1))?;
        let query = v["query"]
            .as_str()
            .with_context(|| format!("line {}: no query", i + 1))?
            .to_string();
        let relevant = v["relevant"]
            .as_array()
            .with_context(|| format!("line {}: no relevant list", i + 1))?
            .iter()
            .filter_map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
            .collect();
        out.push(Labeled { query, relevant });
    }
    ensure!(!out.is_empty(), "{} holds no queries", path.display());
    Ok(out)
}

/// nDCG@10 with binary gains and recall@100 of one ranked list of `(row, score)`.
pub fn quality(ranked: &[(u32, f32)], relevant: &HashSet<u32>) -> (f64, f64) {
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, (row, _))| relevant.contains(row))
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(10))
        .map(|i| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let found = ranked
        .iter()
        .take(100)
        .filter(|(row, _)| relevant.contains(row))
        .count();
    let ndcg = if ideal > 0.0 { dcg / ideal } else { 0.0 };
    (ndcg, found as f64 / relevant.len().max(1) as f64)
}

/// nDCG@10 and recall@100 of each query's ranked list.
pub fn per_query(lists: &[Vec<(u32, f32)>], labeled: &[Labeled]) -> Vec<(f64, f64)> {
    lists
        .iter()
        .zip(labeled)
        .map(|(ranked, l)| quality(ranked, &l.relevant))
        .collect()
}

/// Mean nDCG@10 and recall@100 of one ranked list per query (4 decimals).
pub fn mean_quality(lists: &[Vec<(u32, f32)>], labeled: &[Labeled]) -> (f64, f64) {
    let each = per_query(lists, labeled);
    let n = each.len().max(1) as f64;
    let d: f64 = each.iter().map(|q| q.0).sum();
    let r: f64 = each.iter().map(|q| q.1).sum();
    (round(d / n, 4), round(r / n, 4))
}

/// Mean and standard error of the paired differences `a[i] - b[i]`.
pub fn paired_difference(a: &[f64], b: &[f64]) -> (f64, f64) {
    let n = a.len().min(b.len());
    if n < 2 {
        return (0.0, 0.0);
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, (var / n as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_scores_binary_gains() {
        let relevant: HashSet<u32> = [1, 2].into_iter().collect();
        // Relevant at ranks 1 and 3: DCG = 1 + 1/log2(4); ideal = 1 + 1/log2(3).
        let ranked = [(1, 0.9), (7, 0.8), (2, 0.7)];
        let (ndcg, recall) = quality(&ranked, &relevant);
        let want = (1.0 + 0.5) / (1.0 + 1.0 / 3f64.log2());
        assert!((ndcg - want).abs() < 1e-12, "{ndcg} vs {want}");
        assert_eq!(recall, 1.0);
        assert_eq!(quality(&[(9, 1.0)], &relevant), (0.0, 0.0));
    }

    #[test]
    fn paired_difference_has_mean_and_standard_error() {
        let (mean, se) = paired_difference(&[1.0, 2.0, 3.0], &[0.0, 1.0, 1.0]);
        assert!((mean - 4.0 / 3.0).abs() < 1e-12);
        // Differences 1, 1, 2: sample variance 1/3, standard error sqrt(1/9).
        assert!((se - (1.0f64 / 9.0).sqrt()).abs() < 1e-12);
        assert_eq!(paired_difference(&[1.0], &[0.0]), (0.0, 0.0));
    }
}
