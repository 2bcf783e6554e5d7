//! Checkpoint format: a checksummed little-endian image of the live nodes.
//!
//! ```text
//! magic "HYBHNSW\0" | version u32 | dim u32 | metric u8 (0 L2, 1 Dot, 2 L1) | m u32
//! | ef_construction u32 | seed u64 | level_counter u64 | entry slot u32 (u32::MAX: empty)
//! | node count u32
//! | version ≥ 2: quantizer kind u8 (0 none, 1 sq8, 2 rotated, 3 rotated with centers)
//! |   sq8: offset f32 * dim | step f32 * dim | trained_on u64
//! |   rotated: bits u8 | seed u64 | center f32 * dim | trained_on u64
//! |   rotated with centers (version 3 only): bits u8 | seed u64 | center f32 * dim
//! |     | count u32 | centers f32 * dim * count | trained_on u64 (the codes' metric is the
//! |     index's)
//! | per node: slot u32 | level u8 | vector f32 * dim | version ≥ 2 with a quantizer: code row
//! |   (row_bytes) | per layer 0..=level: count u32, ids u32 * count
//! | crc32 (IEEE) of every byte before it
//! ```
//! An image is written as version 3 only when its quantizer has centers (kind 3), else as
//! version 2, byte for byte as before centers existed (so older readers keep reading it, and
//! refuse a version-3 image by its version rather than misread it). Versions 1 (no quantizer
//! section, no rows) and 2 are still read. A quantizer's state is what its
//! `from_parts` takes, so a reopen rebuilds the same codes without training.
//! Decoding checks magic, version, checksum, then every count, id and level against the
//! parameters; links to slots that are not live are dropped (invariant 2 allows them in memory,
//! but a loaded index starts without dead links). Bad input yields a [`DecodeError`], never a
//! panic.

use std::io::{Read, Write};
use std::sync::atomic::Ordering;

use super::codes::{Codes, Quantizer};
use super::raw::CodeStore;
use super::search::list_ids;
use super::{DecodeError, Hnsw, HnswParams, MAX_LEVEL, Metric, pack_entry, state, unpack_entry};
use crate::index::quant::{MAX_CENTERS, Rq, RqBits, RqCenters, RqMetric, Sq8};

const MAGIC: &[u8; 8] = b"HYBHNSW\0";
/// Current checkpoint format version (written only for a quantizer with centers; see the
/// module docs).
pub const FORMAT_VERSION: u32 = 3;

/// The version an image of `quantizer` is written as.
fn version_for(quantizer: Option<&Quantizer>) -> u32 {
    match quantizer {
        Some(Quantizer::RqCenters(_)) => FORMAT_VERSION,
        _ => 2,
    }
}
const HEADER_LEN: usize = 8 + 4 + 4 + 1 + 4 + 4 + 8 + 8 + 4 + 4;

const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Running CRC-32 (IEEE 802.3), the checksum of zlib and PNG.
#[derive(Clone, Copy)]
pub(super) struct Crc32(u32);

impl Crc32 {
    pub(super) fn new() -> Self {
        Self(!0)
    }
    pub(super) fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }
    pub(super) fn finish(self) -> u32 {
        !self.0
    }
}

/// Recomputes the trailing checksum of a checkpoint image (tests reach the structural checks
/// with it).
#[cfg(test)]
pub(super) fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - 4;
    let mut c = Crc32::new();
    c.update(&bytes[..n]);
    bytes[n..].copy_from_slice(&c.finish().to_le_bytes());
}

/// A writer that checksums what passes through it.
struct CrcWriter<W> {
    inner: W,
    crc: Crc32,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.inner.write_all(bytes)
    }
}

/// A bounds-checked reader over the decoded bytes.
struct Cursor<'a> {
    buf: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

struct NodeImage {
    slot: u32,
    level: usize,
    vector: Vec<f32>,
    row: Vec<u8>,
    layers: Vec<Vec<u32>>,
}

fn put_f32s(buf: &mut Vec<u8>, xs: &[f32]) {
    for x in xs {
        buf.extend_from_slice(&x.to_le_bytes());
    }
}

fn f32s(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The quantizer section of a version-2 image.
fn put_quantizer(buf: &mut Vec<u8>, q: Option<(&Quantizer, u64)>) {
    match q {
        None => buf.push(0),
        Some((Quantizer::Sq8(s), trained_on)) => {
            buf.push(1);
            put_f32s(buf, s.offset());
            put_f32s(buf, s.step());
            buf.extend_from_slice(&trained_on.to_le_bytes());
        }
        Some((Quantizer::Rq(r), trained_on)) => {
            buf.push(2);
            buf.push(r.bits().bits() as u8);
            buf.extend_from_slice(&r.seed().to_le_bytes());
            put_f32s(buf, r.center());
            buf.extend_from_slice(&trained_on.to_le_bytes());
        }
        Some((Quantizer::RqCenters(r), trained_on)) => {
            buf.push(3);
            buf.push(r.bits().bits() as u8);
            buf.extend_from_slice(&r.seed().to_le_bytes());
            put_f32s(buf, r.center());
            buf.extend_from_slice(&(r.count() as u32).to_le_bytes());
            put_f32s(buf, r.centers());
            buf.extend_from_slice(&trained_on.to_le_bytes());
        }
    }
}

fn read_quantizer(
    c: &mut Cursor<'_>,
    dim: usize,
    metric: Metric,
    version: u32,
) -> Result<Option<(Quantizer, u64)>, DecodeError> {
    let q = match c.u8()? {
        0 => return Ok(None),
        1 => {
            let offset = f32s(c.take(4 * dim)?);
            let step = f32s(c.take(4 * dim)?);
            Quantizer::Sq8(
                Sq8::from_parts(offset, step).ok_or(DecodeError::Corrupt("bad sq8 grid"))?,
            )
        }
        2 => {
            let bits = RqBits::from_bits(c.u8()? as usize)
                .ok_or(DecodeError::Corrupt("bad rotated code width"))?;
            let seed = c.u64()?;
            let center = f32s(c.take(4 * dim)?);
            Quantizer::Rq(
                Rq::from_parts(center, bits, seed)
                    .map_err(|_| DecodeError::Corrupt("bad rotated code center"))?,
            )
        }
        3 if version >= 3 => {
            let bits = RqBits::from_bits(c.u8()? as usize)
                .ok_or(DecodeError::Corrupt("bad rotated code width"))?;
            let seed = c.u64()?;
            let center = f32s(c.take(4 * dim)?);
            let count = c.u32()? as usize;
            if count == 0 || count > MAX_CENTERS {
                return Err(DecodeError::Corrupt("bad rotated code center count"));
            }
            let centers = f32s(c.take(4 * dim * count)?);
            let metric = match metric {
                Metric::L2 => RqMetric::L2,
                Metric::Dot => RqMetric::Dot,
                Metric::L1 => return Err(DecodeError::Corrupt("rotated code under L1")),
            };
            Quantizer::RqCenters(
                RqCenters::from_parts(center, centers, bits, metric, seed)
                    .map_err(|_| DecodeError::Corrupt("bad rotated code centers"))?,
            )
        }
        _ => return Err(DecodeError::Corrupt("unknown quantizer")),
    };
    let trained_on = c.u64()?;
    Ok(Some((q, trained_on)))
}

impl Hnsw {
    /// Writes a checkpoint of the index to `w` (buffer it: the writes are small).
    ///
    /// Inserts running meanwhile may or may not be included; take checkpoints between applies
    /// for an exact image. Searches are not blocked.
    ///
    /// # Errors
    /// Any error of `w`.
    pub fn write_to<W: Write>(&self, w: W) -> std::io::Result<()> {
        let _gate = self.gate_shared();
        let up = self.read_upper();
        let live: Vec<u32> = (0..self.capacity as u32)
            .filter(|&s| self.is_live(s))
            .collect();
        let mut out = CrcWriter {
            inner: w,
            crc: Crc32::new(),
        };
        let p = &self.params;
        // The gate is held: the codes cannot be replaced meanwhile.
        let codes = self.codes();
        let mut head = Vec::with_capacity(HEADER_LEN);
        head.extend_from_slice(MAGIC);
        let version = version_for(codes.as_ref().map(|c| &c.quantizer));
        head.extend_from_slice(&version.to_le_bytes());
        head.extend_from_slice(&(p.dim as u32).to_le_bytes());
        head.push(match p.metric {
            Metric::L2 => 0,
            Metric::Dot => 1,
            Metric::L1 => 2,
        });
        head.extend_from_slice(&(p.m as u32).to_le_bytes());
        head.extend_from_slice(&(p.ef_construction as u32).to_le_bytes());
        head.extend_from_slice(&p.seed.to_le_bytes());
        head.extend_from_slice(&self.level_counter.load(Ordering::Relaxed).to_le_bytes());
        let entry = unpack_entry(self.entry.load(Ordering::Acquire)).map_or(u32::MAX, |(s, _)| s);
        head.extend_from_slice(&entry.to_le_bytes());
        head.extend_from_slice(&(live.len() as u32).to_le_bytes());
        put_quantizer(
            &mut head,
            codes.as_ref().map(|c| (&c.quantizer, c.trained_on)),
        );
        out.put(&head)?;
        let mut buf = Vec::new();
        for s in live {
            buf.clear();
            let level = self.levels[s as usize].load(Ordering::Relaxed) as usize;
            buf.extend_from_slice(&s.to_le_bytes());
            buf.push(level as u8);
            put_f32s(&mut buf, self.vector(s));
            if let Some(c) = &codes {
                buf.extend_from_slice(c.row(s));
            }
            for layer in 0..=level {
                let ids = list_ids(self.block(&up, s, layer));
                buf.extend_from_slice(&(ids.len() as u32).to_le_bytes());
                for a in ids {
                    buf.extend_from_slice(&a.load(Ordering::Relaxed).to_le_bytes());
                }
            }
            out.put(&buf)?;
        }
        let crc = out.crc.finish();
        out.inner.write_all(&crc.to_le_bytes())?;
        out.inner.flush()
    }

    /// The checkpoint of [`Hnsw::write_to`] as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut v);
        v
    }

    /// Reads a checkpoint written by [`Hnsw::write_to`].
    ///
    /// # Errors
    /// [`DecodeError`]: I/O failure, wrong magic or version, checksum mismatch, truncation, or
    /// content that is not a valid index.
    pub fn read_from<R: Read>(mut r: R) -> Result<Self, DecodeError> {
        let mut bytes = Vec::new();
        r.read_to_end(&mut bytes)?;
        Self::from_bytes(&bytes)
    }

    /// Decodes a checkpoint held in memory; see [`Hnsw::read_from`].
    ///
    /// # Errors
    /// As [`Hnsw::read_from`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() < MAGIC.len() {
            return Err(if MAGIC.starts_with(bytes) {
                DecodeError::Truncated
            } else {
                DecodeError::BadMagic
            });
        }
        if &bytes[..8] != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        if bytes.len() < HEADER_LEN + 4 {
            return Err(DecodeError::Truncated);
        }
        let mut c = Cursor { buf: &bytes[8..] };
        let version = c.u32()?;
        if !(1..=FORMAT_VERSION).contains(&version) {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let (body, tail) = bytes.split_at(bytes.len() - 4);
        let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let mut crc = Crc32::new();
        crc.update(body);
        let computed = crc.finish();
        if stored != computed {
            return Err(DecodeError::ChecksumMismatch { stored, computed });
        }
        let mut c = Cursor { buf: &body[12..] };
        let dim = c.u32()? as usize;
        let metric = match c.u8()? {
            0 => Metric::L2,
            1 => Metric::Dot,
            2 => Metric::L1,
            _ => return Err(DecodeError::Corrupt("unknown metric")),
        };
        let m = c.u32()? as usize;
        let ef_construction = c.u32()? as usize;
        let seed = c.u64()?;
        let level_counter = c.u64()?;
        let entry = c.u32()?;
        let count = c.u32()? as usize;
        if dim == 0 || dim > 1 << 16 {
            return Err(DecodeError::Corrupt("dimension out of range"));
        }
        if !(2..=1 << 12).contains(&m) {
            return Err(DecodeError::Corrupt("m out of range"));
        }
        let quantizer = if version >= 2 {
            read_quantizer(&mut c, dim, metric, version)?
        } else {
            None
        };
        if let Some((q, _)) = &quantizer
            && q.dim() != dim
        {
            return Err(DecodeError::Corrupt("quantizer of another dimension"));
        }
        let row_bytes = quantizer.as_ref().map_or(0, |(q, _)| q.row_bytes());
        // Each node takes at least its slot, level, vector and layer-0 count.
        if count > c.buf.len() / (9 + 4 * dim) {
            return Err(DecodeError::Truncated);
        }
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            let slot = c.u32()?;
            let level = c.u8()? as usize;
            if level > MAX_LEVEL {
                return Err(DecodeError::Corrupt("level out of range"));
            }
            let vector = f32s(c.take(4 * dim)?);
            let row = c.take(row_bytes)?.to_vec();
            let mut layers = Vec::with_capacity(level + 1);
            for layer in 0..=level {
                let max = if layer == 0 { 2 * m } else { m };
                let n = c.u32()? as usize;
                if n > max {
                    return Err(DecodeError::Corrupt("list longer than its layer allows"));
                }
                let ids = c.take(4 * n)?;
                layers.push(
                    ids.chunks_exact(4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                );
            }
            nodes.push(NodeImage {
                slot,
                level,
                vector,
                row,
                layers,
            });
        }
        if !c.buf.is_empty() {
            return Err(DecodeError::Corrupt("trailing bytes after the last node"));
        }
        let capacity = nodes.iter().map(|n| n.slot as usize + 1).max().unwrap_or(0);
        // The arrays are sized by the highest slot. Bound what the input may make us allocate:
        // at most 64 times its own size (or 16 MiB), so a bad header cannot exhaust memory.
        // A real index is refused only if fewer than ~1 in 64 of its slots are live; the
        // engine then rebuilds from the vectors table.
        let limit = (bytes.len() as u128 * 64).max(16 << 20);
        let upper_words: u128 = nodes.iter().map(|n| (n.level * (1 + m)) as u128).sum();
        let words = capacity as u128 * (dim + 2 * m + 4) as u128 + upper_words;
        if words * 4 > limit {
            return Err(DecodeError::Corrupt(
                "slots too sparse: arrays would exceed 64x the checkpoint size",
            ));
        }
        let params = HnswParams {
            dim,
            metric,
            m,
            ef_construction,
            seed,
        };
        let mut index = Self::with_capacity(params, capacity);
        for n in &nodes {
            let s = n.slot as usize;
            if *index.states[s].get_mut() == state::LIVE {
                return Err(DecodeError::Corrupt("slot appears twice"));
            }
            *index.states[s].get_mut() = state::LIVE;
            *index.levels[s].get_mut() = n.level as u8;
        }
        let up = index.upper.get_mut().unwrap_or_else(|p| p.into_inner());
        let stride0 = index.stride0;
        let w = 1 + m;
        for n in &nodes {
            let mut lists: Vec<Vec<u32>> = Vec::with_capacity(n.layers.len());
            for ids in &n.layers {
                lists.push(
                    ids.iter()
                        .copied()
                        .filter(|&id| {
                            (id as usize) < capacity
                                && id != n.slot
                                && index.states[id as usize].load(Ordering::Relaxed) == state::LIVE
                        })
                        .collect(),
                );
            }
            let s = n.slot as usize;
            let block0 = &mut index.links0[s * stride0..(s + 1) * stride0];
            *block0[0].get_mut() = lists[0].len() as u32;
            for (a, id) in block0[1..].iter_mut().zip(&lists[0]) {
                *a.get_mut() = *id;
            }
            if n.level > 0 {
                let mut b: Box<[std::sync::atomic::AtomicU32]> =
                    (0..n.level * w).map(|_| Default::default()).collect();
                for (layer, ids) in lists.iter().enumerate().skip(1) {
                    let blk = &mut b[(layer - 1) * w..layer * w];
                    *blk[0].get_mut() = ids.len() as u32;
                    for (a, id) in blk[1..].iter_mut().zip(ids) {
                        *a.get_mut() = *id;
                    }
                }
                up.insert(n.slot, b);
            }
            index.vectors.set(n.slot, &n.vector);
        }
        if let Some((quantizer, trained_on)) = quantizer {
            let mut store = CodeStore::new(capacity, row_bytes);
            for n in &nodes {
                store.set(n.slot, &n.row);
            }
            *index.codes.get_mut().unwrap_or_else(|p| p.into_inner()) =
                Some(std::sync::Arc::new(Codes {
                    quantizer,
                    store,
                    trained_on,
                }));
        }
        let entry = if entry == u32::MAX {
            if count != 0 {
                return Err(DecodeError::Corrupt("no entry point in a non-empty index"));
            }
            super::NO_ENTRY
        } else {
            let e = entry as usize;
            if e >= capacity || *index.states[e].get_mut() != state::LIVE {
                return Err(DecodeError::Corrupt("entry point is not a live node"));
            }
            let level = *index.levels[e].get_mut() as usize;
            if nodes.iter().any(|n| n.level > level) {
                return Err(DecodeError::Corrupt("entry point is not on the top layer"));
            }
            pack_entry(level, entry)
        };
        *index.entry.get_mut() = entry;
        *index.len.get_mut() = count;
        *index.level_counter.get_mut() = level_counter;
        Ok(index)
    }
}
