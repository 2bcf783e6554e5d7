//! Quantized walks: a trained [`Quantizer`] and one code row per slot beside the graph, the
//! walk ranking by the codes' estimates, and rescoring with the `f32` vectors.
//!
//! # Invariants
//! 1. The `f32` vectors stay the index's truth. An insert's construction search may rank by
//!    the codes (`graph.rs`; not with 1-bit codes), but every link decision (neighbour
//!    selection, pruning, removal's repair) uses exact `f32` distances: the candidates the
//!    codes found are rescored before any is chosen. Every distance a search returns is an
//!    exact `f32` distance (the codes only choose the candidates: the best
//!    `⌈k · oversampling⌉` by estimate are rescored).
//! 2. Once codes are published, every live slot has its code: a slot's row is written with its
//!    vector, under the same protocol (`raw.rs`), and [`Hnsw::quantize`] encodes every live slot
//!    into a new store while inserts and removals wait (it holds the changes lock), then
//!    publishes it under the exclusive gate, so a search sees one store throughout.
//! 3. A code row is `code | factors` ([`Quantizer::row_bytes`]): SQ8 `dim` bytes and `|x̂|²`
//!    (f32 LE); rotated codes `padded_dim · B / 8` bytes, `|x - c|` and `scale` (f32 LE);
//!    rotated codes with per-cluster centers the same code, `|x - c_j|`, `scale`, `e` (f32 LE)
//!    and the center `j` (u32 LE). A quantizer without centers keeps its row and estimator
//!    exactly as before centers existed.

use std::sync::Arc;

use super::raw::CodeStore;
use super::{Hnsw, HnswError, Metric};
use crate::index::quant::{
    CENTERS_BELOW, MAX_CENTERS, Rq, RqBits, RqCenterFactors, RqCenters, RqCentersQuery, RqFactors,
    RqMetric, RqQuery, SAMPLE_PER_CENTER, Sq8, Sq8Query,
};
use crate::model::config::Quantization;

/// Candidates rescored per result when a search does not say: measured on pydoc, mnist10k
/// and bigann10k (`docs/quantization.md`).
pub const DEFAULT_OVERSAMPLING: f32 = 2.0;

/// Largest oversampling factor a search may ask for.
pub const MAX_OVERSAMPLING: f32 = 64.0;

/// A scan of at most this many bytes of `f32` vectors skips the codes. Measured on mnist10k
/// (784-d, `hybridb-bench filtered`): over 90 matching vectors (280 KB) the code scan was 2.7x
/// slower than the `f32` one (query rotation, quantization and rescoring cost more than the
/// distances they save), over 900 (2.8 MB) 4.6x faster.
const SCAN_F32_BYTES: usize = 512 << 10;

/// How many candidates ahead of its distance rescoring prefetches: the candidates are
/// scattered over the originals (often a mapped file), so their misses should overlap.
const RESCORE_AHEAD: usize = 8;

/// SQ8 training clips this quantile at each end of every dimension.
const SQ8_CLIP: f32 = 0.001;

/// Candidates to rescore for `k` results: `⌈k · oversampling⌉`, at least `k`.
pub(super) fn candidates(k: usize, oversampling: f32) -> usize {
    let os = if oversampling.is_finite() {
        oversampling.clamp(1.0, MAX_OVERSAMPLING)
    } else {
        1.0
    };
    ((k as f64 * f64::from(os)).ceil() as usize).max(k)
}

/// A trained quantizer: an SQ8 grid or a rotated code.
#[derive(Debug, Clone, PartialEq)]
pub enum Quantizer {
    /// 8 bits per dimension.
    Sq8(Sq8),
    /// Rotated 1-, 2- or 4-bit codes measured from one center.
    Rq(Rq),
    /// Rotated 1-, 2- or 4-bit codes measured from per-cluster centers.
    RqCenters(RqCenters),
}

/// A query prepared for one quantizer and metric.
pub(super) enum Prepared {
    Sq8L2(Sq8Query),
    Sq8Dot(Sq8Query),
    Sq8L1(Vec<f32>),
    Rq(RqQuery),
    RqCenters(RqCentersQuery),
}

fn f32_at(row: &[u8], at: usize) -> f32 {
    let mut b = [0u8; 4];
    if let Some(s) = row.get(at..at + 4) {
        b.copy_from_slice(s);
    }
    f32::from_le_bytes(b)
}

fn rq_kind(bits: RqBits) -> Quantization {
    match bits {
        RqBits::One => Quantization::Rq1,
        RqBits::Two => Quantization::Rq2,
        RqBits::Four => Quantization::Rq4,
    }
}

fn rq_metric(metric: Metric) -> Option<RqMetric> {
    match metric {
        Metric::L2 => Some(RqMetric::L2),
        Metric::Dot => Some(RqMetric::Dot),
        Metric::L1 => None,
    }
}

impl Quantizer {
    /// Trains `kind` for `metric` from `sample` (rows of `dim` values); `seed` draws a
    /// rotation and seeds k-means. A rotated code keeps per-cluster centers when they shrink
    /// the sample's mean squared distance to its center below [`CENTERS_BELOW`] of the
    /// one-center value (clustered data), else measures from the mean. `Err` for
    /// [`Quantization::None`], an empty sample, a rotated code under L1 (no estimator), or
    /// values that are not finite.
    pub fn train(
        kind: Quantization,
        sample: &[&[f32]],
        dim: usize,
        metric: Metric,
        seed: u64,
    ) -> Result<Quantizer, String> {
        if kind == Quantization::Sq8 {
            return Sq8::train(sample, dim, SQ8_CLIP)
                .map(Quantizer::Sq8)
                .ok_or_else(|| "empty training sample".to_string());
        }
        let bits = kind
            .rq_bits()
            .and_then(RqBits::from_bits)
            .ok_or_else(|| format!("quantization {} has no code", kind.name()))?;
        let Some(rq_metric) = rq_metric(metric) else {
            return Err(format!(
                "quantization {} has no estimator for L1 distances",
                kind.name()
            ));
        };
        let max = (sample.len() / SAMPLE_PER_CENTER).clamp(1, MAX_CENTERS);
        let (rq, spread) =
            RqCenters::train(sample, dim, bits, rq_metric, seed, max).map_err(|e| e.to_string())?;
        Ok(if rq.count() > 1 && spread.ratio() < CENTERS_BELOW {
            Quantizer::RqCenters(rq)
        } else {
            Quantizer::Rq(rq.rq().clone())
        })
    }

    /// The [`Quantization`] this quantizer implements.
    pub fn kind(&self) -> Quantization {
        match self {
            Quantizer::Sq8(_) => Quantization::Sq8,
            Quantizer::Rq(rq) => rq_kind(rq.bits()),
            Quantizer::RqCenters(rq) => rq_kind(rq.bits()),
        }
    }

    /// Dimensions of the vectors it encodes.
    pub fn dim(&self) -> usize {
        match self {
            Quantizer::Sq8(s) => s.dim(),
            Quantizer::Rq(r) => r.dim(),
            Quantizer::RqCenters(r) => r.dim(),
        }
    }

    /// Bytes of one code row (code and factors).
    pub fn row_bytes(&self) -> usize {
        match self {
            Quantizer::Sq8(s) => s.dim() + 4,
            Quantizer::Rq(r) => r.code_bytes() + 8,
            Quantizer::RqCenters(r) => r.code_bytes() + 16,
        }
    }

    /// Bytes of the trained state.
    pub fn memory_bytes(&self) -> usize {
        match self {
            Quantizer::Sq8(s) => s.memory_bytes(),
            Quantizer::Rq(r) => r.memory_bytes(),
            Quantizer::RqCenters(r) => r.memory_bytes(),
        }
    }

    /// Writes the row of `v` into `row` ([`Quantizer::row_bytes`] long).
    pub(super) fn encode(&self, v: &[f32], row: &mut [u8]) -> Result<(), String> {
        match self {
            Quantizer::Sq8(s) => {
                let (code, tail) = row.split_at_mut(s.dim().min(row.len()));
                if code.len() != s.dim() || v.len() != s.dim() || tail.len() < 4 {
                    return Err("code row of the wrong length".into());
                }
                let norm2 = s.encode(v, code);
                tail[..4].copy_from_slice(&norm2.to_le_bytes());
                Ok(())
            }
            Quantizer::Rq(r) => {
                let n = r.code_bytes().min(row.len());
                let (code, tail) = row.split_at_mut(n);
                if tail.len() < 8 {
                    return Err("code row of the wrong length".into());
                }
                let f = r.encode(v, code).map_err(|e| e.to_string())?;
                tail[..4].copy_from_slice(&f.norm.to_le_bytes());
                tail[4..8].copy_from_slice(&f.scale.to_le_bytes());
                Ok(())
            }
            Quantizer::RqCenters(r) => {
                let n = r.code_bytes().min(row.len());
                let (code, tail) = row.split_at_mut(n);
                if tail.len() < 16 {
                    return Err("code row of the wrong length".into());
                }
                let f = r.encode(v, code).map_err(|e| e.to_string())?;
                tail[..4].copy_from_slice(&f.factors.norm.to_le_bytes());
                tail[4..8].copy_from_slice(&f.factors.scale.to_le_bytes());
                tail[8..12].copy_from_slice(&f.e.to_le_bytes());
                tail[12..16].copy_from_slice(&f.center.to_le_bytes());
                Ok(())
            }
        }
    }

    /// Prepares `q` for estimates under `metric`; `None` if the code cannot (the caller walks
    /// `f32` instead).
    pub(super) fn prepare(&self, q: &[f32], metric: Metric) -> Option<Prepared> {
        match self {
            Quantizer::Sq8(s) => Some(match metric {
                Metric::L2 => Prepared::Sq8L2(s.prepare(q)),
                Metric::Dot => Prepared::Sq8Dot(s.prepare(q)),
                Metric::L1 => Prepared::Sq8L1(q.to_vec()),
            }),
            Quantizer::Rq(r) => r.query(q, rq_metric(metric)?).ok().map(Prepared::Rq),
            Quantizer::RqCenters(r) => {
                if rq_metric(metric)? != r.metric() {
                    return None;
                }
                r.query(q).ok().map(Prepared::RqCenters)
            }
        }
    }

    /// The estimated engine distance (lower is better) between a prepared query and a row.
    #[inline]
    pub(super) fn distance(&self, q: &Prepared, row: &[u8]) -> f32 {
        match (self, q) {
            (Quantizer::Sq8(s), Prepared::Sq8L2(p)) => {
                let d = s.dim();
                s.l2_squared(p, &row[..d], f32_at(row, d))
            }
            (Quantizer::Sq8(s), Prepared::Sq8Dot(p)) => -s.dot(p, &row[..s.dim()]),
            (Quantizer::Sq8(s), Prepared::Sq8L1(p)) => s.l1(p, &row[..s.dim()]),
            (Quantizer::Rq(r), Prepared::Rq(p)) => {
                let n = r.code_bytes();
                let factors = RqFactors {
                    norm: f32_at(row, n),
                    scale: f32_at(row, n + 4),
                };
                r.distance(p, &row[..n], factors)
            }
            (Quantizer::RqCenters(r), Prepared::RqCenters(p)) => {
                let n = r.code_bytes();
                let factors = RqCenterFactors {
                    factors: RqFactors {
                        norm: f32_at(row, n),
                        scale: f32_at(row, n + 4),
                    },
                    e: f32_at(row, n + 8),
                    center: f32_at(row, n + 12).to_bits(),
                };
                r.distance(p, &row[..n], factors)
            }
            // A query prepared for another quantizer: never built (`prepare` matches `self`).
            _ => f32::INFINITY,
        }
    }
}

/// The trained quantizer and the code rows of an index (see the module invariants).
pub(super) struct Codes {
    pub(super) quantizer: Quantizer,
    pub(super) store: CodeStore,
    /// Vectors the quantizer was trained from (the index retrains as it grows).
    pub(super) trained_on: u64,
}

/// The codes an insert writes into, with the row it encoded.
pub(super) type EncodedRow = (Arc<Codes>, Vec<u8>);

/// How a walk scores a slot against its query.
pub(super) trait Scorer {
    /// Whether [`Scorer::dist`] is the exact `f32` distance (else an estimate, which callers
    /// that decide by distance rescore).
    const EXACT: bool;
    /// The distance of `slot` (live, read under the protocol of `raw.rs`).
    fn dist(&self, slot: u32) -> f32;
    /// Prefetches what [`Scorer::dist`] reads for `slot`.
    fn prefetch(&self, slot: u32);
}

/// Exact `f32` distances to `q`.
pub(super) struct Exact<'a> {
    pub(super) h: &'a Hnsw,
    pub(super) q: &'a [f32],
}

impl Scorer for Exact<'_> {
    const EXACT: bool = true;

    #[inline(always)]
    fn dist(&self, slot: u32) -> f32 {
        self.h.dist(self.q, self.h.vector(slot))
    }
    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        self.h.vectors.prefetch(slot);
    }
}

/// Estimates from the code rows.
pub(super) struct Coded<'a> {
    pub(super) codes: &'a Codes,
    pub(super) query: &'a Prepared,
}

impl Scorer for Coded<'_> {
    const EXACT: bool = false;

    #[inline(always)]
    fn dist(&self, slot: u32) -> f32 {
        self.codes
            .quantizer
            .distance(self.query, self.codes.row(slot))
    }
    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        self.codes.store.prefetch(slot);
    }
}

impl Hnsw {
    /// The published codes, if the index is quantized.
    pub(super) fn codes(&self) -> Option<Arc<Codes>> {
        self.codes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Arc::clone)
    }

    /// The trained quantizer, if the index is quantized.
    pub fn quantizer(&self) -> Option<Quantizer> {
        self.codes().map(|c| c.quantizer.clone())
    }

    /// How many vectors the quantizer was trained from (0: not quantized).
    pub fn trained_on(&self) -> u64 {
        self.codes().map_or(0, |c| c.trained_on)
    }

    /// Bytes of the code rows and the trained state (0 when not quantized).
    pub fn code_bytes(&self) -> usize {
        self.codes()
            .map_or(0, |c| c.store.bytes() + c.quantizer.memory_bytes())
    }

    /// Exactly `min(n, len)` live vectors spread evenly over the slots (a training sample).
    pub fn sample(&self, n: usize) -> Vec<Vec<f32>> {
        let _gate = self.gate_shared();
        let live: Vec<u32> = (0..self.capacity as u32)
            .filter(|&s| self.is_live(s))
            .collect();
        let m = n.min(live.len());
        (0..m)
            .map(|i| self.vector(live[i * live.len() / m]).to_vec())
            .collect()
    }

    /// Encodes every live vector with `quantizer` (on up to `threads` threads) and makes the
    /// walk (and the construction search of later inserts, invariant 1) rank by the codes from
    /// then on, replacing any earlier codes. Inserts and removals wait meanwhile; searches go
    /// on (on the earlier codes, or `f32`).
    ///
    /// # Errors
    /// A quantizer of another dimension, or a vector it cannot encode; the index is then
    /// unchanged.
    pub fn quantize(
        &self,
        quantizer: Quantizer,
        trained_on: u64,
        threads: usize,
    ) -> Result<(), HnswError> {
        if quantizer.dim() != self.params.dim {
            return Err(HnswError::DimensionMismatch {
                expected: self.params.dim,
                got: quantizer.dim(),
            });
        }
        let _changing = self.changes.write().unwrap_or_else(|e| e.into_inner());
        let live: Vec<u32> = (0..self.capacity as u32)
            .filter(|&s| self.is_live(s))
            .collect();
        let row = quantizer.row_bytes();
        let threads = threads.clamp(1, live.len().div_ceil(256).max(1));
        let chunk = live.len().div_ceil(threads).max(1);
        // No insert or removal runs (changes lock): live vectors are stable to read.
        let encoded: Vec<Result<Vec<u8>, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = live
                .chunks(chunk)
                .map(|slots| {
                    let q = &quantizer;
                    s.spawn(move || {
                        let mut out = vec![0u8; slots.len() * row];
                        for (&slot, dst) in slots.iter().zip(out.chunks_exact_mut(row)) {
                            q.encode(self.vector(slot), dst)?;
                        }
                        Ok(out)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("encoding thread panicked".into()))
                })
                .collect()
        });
        let mut store = CodeStore::new(self.capacity, row);
        for (slots, rows) in live.chunks(chunk).zip(encoded) {
            let rows = rows.map_err(HnswError::Encode)?;
            for (&slot, r) in slots.iter().zip(rows.chunks_exact(row)) {
                store.set(slot, r);
            }
        }
        let codes = Arc::new(Codes {
            quantizer,
            store,
            trained_on,
        });
        let _gate = self.gate_exclusive();
        *self.codes.write().unwrap_or_else(|e| e.into_inner()) = Some(codes);
        Ok(())
    }

    /// Drops the codes: the walk ranks by `f32` from then on. Waits for inserts and removals
    /// in flight, and for searches on the codes to finish.
    pub fn unquantize(&self) {
        let _changing = self.changes.write().unwrap_or_else(|e| e.into_inner());
        let _gate = self.gate_exclusive();
        *self.codes.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The row of `v` for the published codes (`None` when not quantized), encoded before the
    /// insert takes any lock. The caller holds the changes lock, so the codes cannot change
    /// before the row is written.
    pub(super) fn encode_row(&self, v: &[f32]) -> Result<Option<EncodedRow>, HnswError> {
        let Some(codes) = self.codes() else {
            return Ok(None);
        };
        let mut row = vec![0u8; codes.quantizer.row_bytes()];
        codes
            .quantizer
            .encode(v, &mut row)
            .map_err(HnswError::Encode)?;
        Ok(Some((codes, row)))
    }

    /// Exact distances of `found` (live slots; the caller holds the gate shared), the best `k`
    /// nearest first, ties by slot.
    pub(super) fn rescore(&self, q: &[f32], found: Vec<(u32, f32)>, k: usize) -> Vec<(u32, f32)> {
        let mut out: Vec<(u32, f32)> = Vec::with_capacity(found.len());
        for &(slot, _) in found.iter().take(RESCORE_AHEAD) {
            self.vectors.prefetch(slot);
        }
        for (i, &(slot, _)) in found.iter().enumerate() {
            if let Some(&(next, _)) = found.get(i + RESCORE_AHEAD) {
                self.vectors.prefetch(next);
            }
            out.push((slot, self.dist(q, self.vector(slot))));
        }
        out.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        out.truncate(k);
        out
    }

    /// As [`Hnsw::search_filtered_with_share`] (`allowed` `None`: every live slot, the plain
    /// search), rescoring `⌈k · oversampling⌉` candidates on a quantized index (1 or less:
    /// `k`, which only reorders them).
    pub fn search_oversampled(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        oversampling: f32,
        allowed: Option<&dyn Fn(u32) -> bool>,
        share: f64,
    ) -> Vec<(u32, f32)> {
        match allowed {
            None => self.search_impl(query, k, ef, |_| true, true, oversampling),
            Some(f) => self.search_impl(
                query,
                k,
                ef,
                f,
                share >= super::POOL_WALK_SHARE,
                oversampling,
            ),
        }
    }

    /// The `k` nearest live slots among `slots` (a scan, the exact plan's): by `f32` distance,
    /// or on a quantized index (unless the subset is small) by the codes' estimates with the
    /// best `⌈k · oversampling⌉` rescored. Nearest first, with exact distances (`f32`: plus any pairs tied with the
    /// `k`-th, so that the caller can break ties by entity id).
    pub fn scan_top(
        &self,
        query: &[f32],
        slots: impl Iterator<Item = u32>,
        k: usize,
        oversampling: f32,
    ) -> Vec<(u32, f32)> {
        if query.len() != self.params.dim || k == 0 {
            return Vec::new();
        }
        let _gate = self.gate_shared();
        let live: Vec<u32> = slots
            .filter(|&s| (s as usize) < self.capacity && self.is_live(s))
            .collect();
        let fetch = candidates(k, oversampling);
        // A small subset is scanned in f32: preparing the query (a rotation) and rescoring
        // cost more than the f32 distances they save (see `SCAN_F32_BYTES`).
        let small = live.len() <= 2 * fetch || live.len() * self.params.dim * 4 <= SCAN_F32_BYTES;
        let codes = if small { None } else { self.codes() };
        let prepared = codes
            .as_ref()
            .and_then(|c| Some((c, c.quantizer.prepare(query, self.params.metric)?)));
        let live = live.into_iter();
        match prepared {
            Some((codes, p)) => {
                let scorer = Coded { codes, query: &p };
                let found = crate::index::top_k(scan_with(&scorer, live), fetch);
                self.rescore(query, found, k)
            }
            // Boundary ties kept, as `top_k` gives them (the caller breaks them by entity id).
            None => crate::index::top_k(scan_with(&Exact { h: self, q: query }, live), k),
        }
    }
}

/// `(slot, distance)` for each slot, prefetching one ahead (the slots are scattered).
fn scan_with<'a, S: Scorer>(
    s: &'a S,
    slots: impl Iterator<Item = u32> + 'a,
) -> impl Iterator<Item = (u32, f32)> + 'a {
    let mut slots = slots.peekable();
    std::iter::from_fn(move || {
        let cur = slots.next()?;
        if let Some(&next) = slots.peek() {
            s.prefetch(next);
        }
        Some((cur, s.dist(cur)))
    })
}
