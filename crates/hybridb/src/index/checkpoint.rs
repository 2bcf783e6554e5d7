//! HNSW checkpoints: a file per collection holding the graph, the slot → id map it was taken
//! with, and the change sequence number it covers, so that reopening loads the graph and
//! replays only later changes instead of rebuilding.
//!
//! File `<database file>.index/c{cid}.hnsw`:
//! ```text
//! magic "HYBCKPT1" | cid u64 | config_hash u64 | seq u64 | slots u64
//! | slots x 16-byte entity id (all zero: free slot) | header_hash u64 (FNV-1a of all before)
//! | graph (the HNSW image, with its own CRC-32)
//! ```
//! All integers little-endian. Written to a temporary file, fsynced, then renamed over the old
//! one, so a crash leaves either the old or the new checkpoint, never a torn one.
//!
//! Invariants: a checkpoint is *derived* state. It is used only if its header hash and the
//! graph's CRC check out, its cid and config hash match the collection, and its seq is not
//! ahead of the database's last sequence number; otherwise the index is rebuilt from redb.
//! It is only taken when everything it covers is durable (see `Shared::checkpoint`).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::index::hnsw::Hnsw;
use crate::model::id::EntityId;

const MAGIC: &[u8; 8] = b"HYBCKPT1";
const HEADER: usize = 8 + 8 * 4;

/// A decoded checkpoint.
pub(crate) struct Checkpoint {
    /// Last change sequence number the graph covers.
    pub seq: u64,
    /// Slot → id when it was taken (`EntityId::MIN` for free slots).
    pub slot_ids: Vec<EntityId>,
    /// The graph.
    pub graph: Hnsw,
}

/// FNV-1a, 64 bit: a fast hash for the header and the config (the graph has its own CRC).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The folder of a database's checkpoints.
pub(crate) fn dir_for(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".index");
    PathBuf::from(name)
}

/// The checkpoint file of collection `cid`.
pub(crate) fn path_for(dir: &Path, cid: u64) -> PathBuf {
    dir.join(format!("c{cid}.hnsw"))
}

/// The checkpoint file of the named vector `vid` of collection `cid` (same format; its
/// config hash covers the named vector's id and config).
pub(crate) fn named_path_for(dir: &Path, cid: u64, vid: u32) -> PathBuf {
    dir.join(format!("c{cid}.v{vid}.hnsw"))
}

/// Encodes a checkpoint (header, slot map, graph image).
pub(crate) fn encode(
    cid: u64,
    config_hash: u64,
    seq: u64,
    slot_ids: &[EntityId],
    graph: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + slot_ids.len() * 16 + 8 + graph.len());
    out.extend_from_slice(MAGIC);
    for v in [cid, config_hash, seq, slot_ids.len() as u64] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for id in slot_ids {
        out.extend_from_slice(&id.to_bytes());
    }
    let h = fnv1a(&out);
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(graph);
    out
}

/// Writes `bytes` as the checkpoint file `path`, atomically (temporary file, fsync, rename).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("hnsw.tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        // Makes the rename durable on file systems that need it; not all platforms allow it.
        let _ = d.sync_all();
    }
    Ok(())
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// Decodes and validates a checkpoint; `Err` says why it cannot be used (never panics).
pub(crate) fn decode(
    bytes: &[u8],
    cid: u64,
    config_hash: u64,
    max_seq: u64,
) -> Result<Checkpoint, String> {
    if bytes.get(..8) != Some(MAGIC.as_slice()) {
        return Err("not a hybridb checkpoint (bad magic)".into());
    }
    let field = |i: usize| u64_at(bytes, 8 + 8 * i).ok_or("truncated header");
    let (file_cid, file_hash, seq, slots) = (field(0)?, field(1)?, field(2)?, field(3)?);
    if file_cid != cid {
        return Err(format!(
            "checkpoint is for collection id {file_cid}, not {cid}"
        ));
    }
    if file_hash != config_hash {
        return Err("checkpoint was taken with another collection config".into());
    }
    if seq > max_seq {
        return Err(format!(
            "checkpoint seq {seq} is ahead of the database ({max_seq})"
        ));
    }
    let ids_end = usize::try_from(slots)
        .ok()
        .and_then(|n| n.checked_mul(16))
        .and_then(|n| n.checked_add(HEADER))
        .filter(|&end| end + 8 <= bytes.len())
        .ok_or("truncated slot map")?;
    let stored_hash = u64_at(bytes, ids_end).ok_or("truncated header hash")?;
    if fnv1a(&bytes[..ids_end]) != stored_hash {
        return Err("checkpoint header checksum mismatch".into());
    }
    let slot_ids = bytes[HEADER..ids_end]
        .chunks_exact(16)
        .map(|c| {
            let mut a = [0u8; 16];
            a.copy_from_slice(c);
            EntityId::from_bytes(a)
        })
        .collect();
    let graph = Hnsw::from_bytes(&bytes[ids_end + 8..]).map_err(|e| format!("graph: {e}"))?;
    Ok(Checkpoint {
        seq,
        slot_ids,
        graph,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    impl std::fmt::Debug for Checkpoint {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Checkpoint(seq {})", self.seq)
        }
    }
    use crate::index::hnsw::{HnswParams, Metric};

    fn sample() -> (Vec<EntityId>, Vec<u8>) {
        let mut g = Hnsw::new(HnswParams::new(2, Metric::L2));
        g.insert(0, &[0.0, 1.0]).unwrap();
        g.insert(2, &[1.0, 1.0]).unwrap();
        let ids = vec![
            EntityId::from_u128(7),
            EntityId::MIN,
            EntityId::from_u128(9),
        ];
        (ids, g.to_bytes())
    }

    #[test]
    fn round_trip_and_every_rejection() {
        let (ids, graph) = sample();
        let bytes = encode(3, 42, 100, &ids, &graph);
        let c = decode(&bytes, 3, 42, 100).unwrap();
        assert_eq!((c.seq, c.slot_ids.clone(), c.graph.len()), (100, ids, 2));
        assert!(
            decode(&bytes, 4, 42, 100)
                .unwrap_err()
                .contains("collection id")
        );
        assert!(decode(&bytes, 3, 43, 100).unwrap_err().contains("config"));
        assert!(decode(&bytes, 3, 42, 99).unwrap_err().contains("ahead"));
        for cut in [0, 5, 20, 60, bytes.len() - 1] {
            assert!(decode(&bytes[..cut], 3, 42, 100).is_err(), "cut at {cut}");
        }
        for flip in [0, 9, 45, 70, bytes.len() - 3] {
            let mut b = bytes.clone();
            b[flip] ^= 0x40;
            assert!(decode(&b, 3, 42, 100).is_err(), "flip at {flip}");
        }
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_for(&dir_for(&dir.path().join("db.redb")), 1);
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert!(!p.with_extension("hnsw.tmp").exists());
    }
}
