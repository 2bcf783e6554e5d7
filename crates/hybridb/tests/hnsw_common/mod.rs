//! Shared helpers of the `hnsw_*` integration tests: texmex readers, brute force, recall.
#![allow(dead_code)]

use std::path::PathBuf;

use hybridb::index::hnsw::{Hnsw, HnswParams, Metric};

/// `shared/data/<name>/` next to the repository checkout.
pub fn data_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../../shared/data/{name}/"))
}

fn read_rows(path: &PathBuf, width: usize) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let d = i32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        rows.push(bytes[at + 4..at + 4 + d * width].to_vec());
        at += 4 + d * width;
    }
    rows
}

/// Rows of a `.bvecs` file as `f32`.
pub fn bvecs(path: &PathBuf) -> Vec<Vec<f32>> {
    read_rows(path, 1)
        .into_iter()
        .map(|r| r.into_iter().map(f32::from).collect())
        .collect()
}

/// Rows of an `.ivecs` file.
pub fn ivecs(path: &PathBuf) -> Vec<Vec<u32>> {
    read_rows(path, 4)
        .into_iter()
        .map(|r| {
            r.chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")) as u32)
                .collect()
        })
        .collect()
}

/// Rows of vectors.
pub type Rows = Vec<Vec<f32>>;

/// bigann10k: (base, queries, ground truth top 100).
pub fn bigann() -> (Rows, Rows, Vec<Vec<u32>>) {
    let d = data_dir("bigann10k");
    (
        bvecs(&d.join("base.bvecs")),
        bvecs(&d.join("queries.bvecs")),
        ivecs(&d.join("groundtruth.ivecs")),
    )
}

/// A tiny deterministic generator (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    /// `n` distinct indices in `0..len`.
    pub fn sample(&mut self, len: usize, n: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..len).collect();
        for i in 0..n {
            let j = i + self.below(len - i);
            idx.swap(i, j);
        }
        idx.truncate(n);
        idx
    }
}

/// Random vectors in the unit cube.
pub fn random_vectors(rng: &mut Rng, n: usize, dim: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| (0..dim).map(|_| rng.unit()).collect())
        .collect()
}

pub fn l2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Exact top-k slots among `base` rows with `keep(slot)`, by squared L2.
pub fn brute_force(base: &[Vec<f32>], q: &[f32], k: usize, keep: impl Fn(u32) -> bool) -> Vec<u32> {
    let mut all: Vec<(f32, u32)> = base
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i as u32))
        .map(|(i, v)| (l2(q, v), i as u32))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.into_iter().take(k).map(|(_, s)| s).collect()
}

/// Mean of |found ∩ truth| / k.
pub fn recall(found: &[Vec<u32>], truth: &[Vec<u32>], k: usize) -> f64 {
    let hits: usize = found
        .iter()
        .zip(truth)
        .map(|(f, t)| {
            f.iter()
                .take(k)
                .filter(|s| t[..k.min(t.len())].contains(s))
                .count()
        })
        .sum();
    hits as f64 / (k * found.len()) as f64
}

/// Slots of the top-k of every query.
pub fn search_all(index: &Hnsw, queries: &[Vec<f32>], k: usize, ef: usize) -> Vec<Vec<u32>> {
    queries
        .iter()
        .map(|q| index.search(q, k, ef).into_iter().map(|(s, _)| s).collect())
        .collect()
}

/// Default parameters with seed 7.
pub fn params(dim: usize) -> HnswParams {
    HnswParams {
        seed: 7,
        ..HnswParams::new(dim, Metric::L2)
    }
}

/// Builds an index over `base` (slot = row) with two threads.
pub fn build(base: &[Vec<f32>], p: HnswParams) -> Hnsw {
    let mut index = Hnsw::with_capacity(p, base.len());
    let items: Vec<(u32, &[f32])> = base
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u32, v.as_slice()))
        .collect();
    index.insert_batch_parallel(&items, 2).expect("insert");
    index
}
