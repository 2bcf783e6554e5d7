//! Read caches, one per level, each bounded by bytes and each possible to switch off:
//! L1 decoded entity records and L2 stored vectors (both keyed by collection and id, used by
//! `get`, `get_many` and the payload/vector join of a search), L3 search results (keyed by
//! collection and the whole request).
//!
//! A value is cached the second time its key is read within a window ([`Doorkeeper`]): a
//! workload of unique queries then pays only for the lookups, not for copies into the caches.
//!
//! Invariant: a cache never serves a value older than the last acknowledged write. It rests on
//! two kinds of counters that only the writer thread moves:
//! - every collection has a write window ([`WriteWindow`]): `begun` moves before a write group
//!   that touches the collection commits, `done` after its index was updated (and before the
//!   writer replies). While they differ a write is in flight and the caches of that collection
//!   are neither read nor filled;
//! - every key hashes to one of [`STAMPS`] stamps, which the writer bumps (inside the window)
//!   for each entity it wrote.
//!
//! A reader notes the window (`begun == done`, else it bypasses the caches) and the keys' stamps,
//! then reads redb; it stores what it read, tagged with those stamps, only if the window did not
//! move meanwhile: the snapshot then equals the state the stamps describe. An L1/L2 entry is
//! served while its key's stamp is unchanged and the window is closed; an L3 entry is tagged
//! with the window's count and served while no write to the collection has begun since. Hits
//! that are combined with reads from a snapshot are used only if the window did not move before
//! the snapshot was taken, so that a `get_many` never mixes two moments.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::Weighter;
use quick_cache::sync::Cache;
use serde_json::{Map, Value};

use crate::model::id::EntityId;
use crate::observe::Registered;
use crate::query::search::Hit;

/// Number of per-key stamps (a write to one key invalidates the cached values of the keys that
/// share its stamp: one in this many).
const STAMPS: usize = 4096;

/// Estimated bytes a cache entry costs beyond its value (key, `Arc`, the cache's slot).
const ENTRY_OVERHEAD: usize = 96;

/// Sizes of the three caches, in bytes; 0 switches a level off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizes {
    /// L1: decoded entity records (payload, version, time). Default 32 MiB.
    pub records: usize,
    /// L2: stored vectors (full precision, as written). Default 32 MiB.
    pub vectors: usize,
    /// L3: search results. Default 16 MiB.
    pub results: usize,
}

impl Default for CacheSizes {
    fn default() -> Self {
        CacheSizes {
            records: 32 << 20,
            vectors: 32 << 20,
            results: 16 << 20,
        }
    }
}

impl CacheSizes {
    /// Every level off.
    pub const OFF: CacheSizes = CacheSizes {
        records: 0,
        vectors: 0,
        results: 0,
    };
}

/// Counters and sizes of one cache level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheLevelStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to read (or search) instead, including those made while a write was
    /// in flight.
    pub misses: u64,
    /// Entries held now.
    pub entries: u64,
    /// Estimated bytes held now (never above `capacity`).
    pub bytes: u64,
    /// The configured bound in bytes (0: the level is off).
    pub capacity: u64,
}

/// Counters and sizes of every cache level ([`crate::Database::cache_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// L1, decoded entity records.
    pub records: CacheLevelStats,
    /// L2, stored vectors.
    pub vectors: CacheLevelStats,
    /// L3, search results.
    pub results: CacheLevelStats,
}

/// The write window of one collection (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct WriteWindow {
    begun: AtomicU64,
    done: AtomicU64,
}

impl WriteWindow {
    /// Writer only: a write to the collection is about to commit.
    pub(crate) fn open(&self) {
        self.begun.fetch_add(1, Ordering::SeqCst);
    }

    /// Writer only: every begun write is committed (or failed) and applied.
    pub(crate) fn close(&self) {
        self.done
            .store(self.begun.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// The window's count if no write is in flight.
    pub(crate) fn stable(&self) -> Option<u64> {
        let begun = self.begun.load(Ordering::SeqCst);
        (self.done.load(Ordering::SeqCst) == begun).then_some(begun)
    }

    /// True if no write began since `stable()` returned `count`.
    pub(crate) fn unchanged(&self, count: u64) -> bool {
        self.begun.load(Ordering::SeqCst) == count
    }
}

/// A decoded entity record without its vector (L1).
#[derive(Debug)]
pub(crate) struct CachedRecord {
    pub payload: Map<String, Value>,
    /// The named vectors (kept with the record: most collections have none).
    pub vectors: std::collections::BTreeMap<String, crate::model::entity::NamedVector>,
    pub version: u64,
    pub updated_at: u64,
}

impl CachedRecord {
    /// The full record, with `vector`.
    pub(crate) fn to_record(&self, id: EntityId, vector: &[f32]) -> crate::model::entity::Record {
        crate::model::entity::Record {
            id,
            payload: self.payload.clone(),
            vector: vector.to_vec(),
            vectors: self.vectors.clone(),
            version: self.version,
            updated_at: self.updated_at,
        }
    }
}

/// A cached value with the stamp it is valid for and its weight, computed once.
#[derive(Clone)]
struct Stamped<V> {
    stamp: u64,
    weight: u32,
    value: V,
}

#[derive(Clone, Copy)]
struct ByWeight;

impl<K, V> Weighter<K, Stamped<V>> for ByWeight {
    fn weight(&self, _: &K, v: &Stamped<V>) -> u64 {
        u64::from(v.weight)
    }
}

type EntityKey = (u64, EntityId);

/// An L3 key: the collection and every part of the request that shapes the answer.
pub(crate) type ResultKey = (u64, Box<[u8]>);

struct Level<K, V> {
    cache: Option<Cache<K, Stamped<V>, ByWeight>>,
    capacity: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    name: &'static str,
    /// This level's hit and miss counters in the metrics recorder.
    handles: Registered<(metrics::Counter, metrics::Counter)>,
}

impl<K: Eq + Hash + Clone, V: Clone> Level<K, V> {
    fn new(name: &'static str, bytes: usize, typical_entry: usize) -> Self {
        let cache = (bytes > 0).then(|| {
            let items = (bytes / typical_entry.max(1)).max(16);
            Cache::with_weighter(items, bytes as u64, ByWeight)
        });
        Level {
            cache,
            capacity: bytes as u64,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            name,
            handles: Registered::default(),
        }
    }

    fn get(&self, key: &K, stamp: u64) -> Option<V> {
        let cache = self.cache.as_ref()?;
        let found = cache.get(key).filter(|e| e.stamp == stamp);
        self.count(found.is_some());
        found.map(|e| e.value)
    }

    fn count(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        let name = self.name;
        self.handles.with(
            || {
                let c = |outcome: &'static str| {
                    metrics::counter!("hybridb_cache_lookups_total", "level" => name, "outcome" => outcome)
                };
                (c("hit"), c("miss"))
            },
            |(hit_counter, miss_counter)| {
                if hit { hit_counter } else { miss_counter }.increment(1);
            },
        );
    }

    fn put(&self, key: K, stamp: u64, value: V, bytes: usize) {
        if let Some(cache) = &self.cache {
            let weight = u32::try_from(bytes + ENTRY_OVERHEAD).unwrap_or(u32::MAX);
            cache.insert(
                key,
                Stamped {
                    stamp,
                    weight,
                    value,
                },
            );
        }
    }

    fn remove(&self, key: &K) {
        if let Some(cache) = &self.cache {
            cache.remove(key);
        }
    }

    fn clear(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }

    fn stats(&self) -> CacheLevelStats {
        let (entries, bytes) = self
            .cache
            .as_ref()
            .map_or((0, 0), |c| (c.len() as u64, c.weight()));
        CacheLevelStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
            bytes,
            capacity: self.capacity,
        }
    }
}

/// Bits of a [`Doorkeeper`] (32 KiB).
const DOOR_BITS: usize = 1 << 18;

/// Admission: a value is cached only the second time its key is read within a window, so that
/// keys read once (most of them in a workload of unique queries) never pay for the copy a
/// cached value needs. A bitmap of key hashes, cleared once half of its bits are set (a false
/// positive only admits a value early).
struct Doorkeeper {
    bits: Box<[AtomicU64]>,
    set: AtomicU64,
}

impl Doorkeeper {
    fn new() -> Self {
        Doorkeeper {
            bits: (0..DOOR_BITS / 64).map(|_| AtomicU64::new(0)).collect(),
            set: AtomicU64::new(0),
        }
    }

    /// True if `hash` was seen since the last clearing; marks it either way.
    fn admit(&self, hash: u64) -> bool {
        let bit = (hash as usize) % DOOR_BITS;
        let mask = 1u64 << (bit % 64);
        let word = &self.bits[bit / 64];
        if word.load(Ordering::Relaxed) & mask != 0 {
            return true;
        }
        word.fetch_or(mask, Ordering::Relaxed);
        if self.set.fetch_add(1, Ordering::Relaxed) + 1 >= (DOOR_BITS / 2) as u64 {
            // Races here are harmless: at worst a key is admitted one read early or late.
            self.set.store(0, Ordering::Relaxed);
            for w in self.bits.iter() {
                w.store(0, Ordering::Relaxed);
            }
        }
        false
    }
}

/// The database's caches (shared by all its collections).
pub(crate) struct Caches {
    records: Level<EntityKey, Arc<CachedRecord>>,
    vectors: Level<EntityKey, Arc<[f32]>>,
    results: Level<ResultKey, Arc<[Hit]>>,
    stamps: Box<[AtomicU64]>,
    entity_door: Doorkeeper,
    result_door: Doorkeeper,
}

fn key_hash(key: &impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

fn stamp_index(cid: u64, id: EntityId) -> usize {
    (key_hash(&(cid, id)) % STAMPS as u64) as usize
}

impl Caches {
    pub(crate) fn new(sizes: CacheSizes) -> Self {
        Caches {
            records: Level::new("records", sizes.records, 1024),
            vectors: Level::new("vectors", sizes.vectors, 512 + ENTRY_OVERHEAD),
            results: Level::new("results", sizes.results, 4096),
            stamps: (0..STAMPS).map(|_| AtomicU64::new(0)).collect(),
            entity_door: Doorkeeper::new(),
            result_door: Doorkeeper::new(),
        }
    }

    /// True if L1 and L2 are both on (a `get` needs both to skip redb).
    pub(crate) fn entities_on(&self) -> bool {
        self.records.cache.is_some() && self.vectors.cache.is_some()
    }

    /// True if L3 is on.
    pub(crate) fn results_on(&self) -> bool {
        self.results.cache.is_some()
    }

    /// The current stamp of a key (read before the snapshot whose values it will tag).
    pub(crate) fn stamp(&self, cid: u64, id: EntityId) -> u64 {
        self.stamps[stamp_index(cid, id)].load(Ordering::SeqCst)
    }

    /// L1 and L2 together: the record and vector of `id`, if both are cached for `stamp`.
    pub(crate) fn entity(
        &self,
        cid: u64,
        id: EntityId,
        stamp: u64,
    ) -> Option<(Arc<CachedRecord>, Arc<[f32]>)> {
        // Both levels are looked up (and counted) even when the first misses.
        let record = self.records.get(&(cid, id), stamp);
        let vector = self.vectors.get(&(cid, id), stamp);
        Some((record?, vector?))
    }

    /// True if a record just read for `id` should be cached (its second read in a while;
    /// see [`Doorkeeper`]). Ask before copying it.
    pub(crate) fn admit_entity(&self, cid: u64, id: EntityId) -> bool {
        self.entities_on() && self.entity_door.admit(key_hash(&(cid, id)).rotate_left(32))
    }

    /// True if a search answer for `key` should be cached (as [`Caches::admit_entity`]).
    pub(crate) fn admit_results(&self, key: &ResultKey) -> bool {
        self.results_on() && self.result_door.admit(key_hash(key))
    }

    /// Stores what a snapshot read for `id`, valid for `stamp`.
    pub(crate) fn put_entity(
        &self,
        cid: u64,
        id: EntityId,
        stamp: u64,
        record: Arc<CachedRecord>,
        vector: Arc<[f32]>,
    ) {
        let payload_bytes = payload_bytes(&record.payload)
            + record
                .vectors
                .values()
                .map(crate::model::entity::NamedVector::approx_bytes)
                .sum::<usize>();
        self.records.put((cid, id), stamp, record, payload_bytes);
        let vector_bytes = std::mem::size_of_val(&*vector);
        self.vectors.put((cid, id), stamp, vector, vector_bytes);
    }

    /// Writer only (inside the collection's window): `id` was written.
    pub(crate) fn invalidate(&self, cid: u64, id: EntityId) {
        self.stamps[stamp_index(cid, id)].fetch_add(1, Ordering::SeqCst);
        self.records.remove(&(cid, id));
        self.vectors.remove(&(cid, id));
    }

    /// Writer only (inside every collection's window): the whole file may have changed.
    pub(crate) fn invalidate_all(&self) {
        for s in self.stamps.iter() {
            s.fetch_add(1, Ordering::SeqCst);
        }
        self.records.clear();
        self.vectors.clear();
        self.results.clear();
    }

    /// The cached answer to `key`, computed while the window's count was `count`.
    pub(crate) fn results(&self, key: &ResultKey, count: u64) -> Option<Arc<[Hit]>> {
        self.results.get(key, count)
    }

    /// Counts an L3 lookup that could not be made (a write was in flight).
    pub(crate) fn results_bypassed(&self) {
        if self.results_on() {
            self.results.count(false);
        }
    }

    /// Counts L1/L2 lookups that could not be made (a write was in flight).
    pub(crate) fn entities_bypassed(&self, n: usize) {
        if self.entities_on() {
            for _ in 0..n {
                self.records.count(false);
                self.vectors.count(false);
            }
        }
    }

    pub(crate) fn put_results(&self, key: ResultKey, count: u64, hits: Arc<[Hit]>) {
        let bytes = key.1.len()
            + hits
                .iter()
                .map(|h| {
                    std::mem::size_of::<Hit>()
                        + h.vector.as_ref().map_or(0, |v| v.len() * 4)
                        + h.payload.as_ref().map_or(0, payload_bytes)
                })
                .sum::<usize>();
        self.results.put(key, count, hits, bytes);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            records: self.records.stats(),
            vectors: self.vectors.stats(),
            results: self.results.stats(),
        }
    }

    /// Sets the cache gauges (bytes and entries per level).
    pub(crate) fn record_gauges(&self) {
        let s = self.stats();
        for (level, l) in [
            ("records", s.records),
            ("vectors", s.vectors),
            ("results", s.results),
        ] {
            metrics::gauge!("hybridb_cache_bytes", "level" => level).set(l.bytes as f64);
            metrics::gauge!("hybridb_cache_entries", "level" => level).set(l.entries as f64);
        }
    }
}

/// Estimated heap bytes of the entries of a decoded JSON object (a payload).
pub(crate) fn payload_bytes(m: &Map<String, Value>) -> usize {
    // Per entry: the key's bytes plus the map node around it.
    m.iter().map(|(k, v)| k.len() + 48 + json_bytes(v)).sum()
}

/// Estimated heap bytes of a decoded JSON value (the bound of L1 and L3 is in these units).
fn json_bytes(v: &Value) -> usize {
    const NODE: usize = std::mem::size_of::<Value>();
    NODE + match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(json_bytes).sum(),
        Value::Object(m) => payload_bytes(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_stable_only_between_writes() {
        let w = WriteWindow::default();
        let c = w.stable().expect("idle window is stable");
        w.open();
        assert_eq!(w.stable(), None);
        assert!(!w.unchanged(c));
        w.close();
        let c2 = w.stable().expect("closed again");
        assert_ne!(c, c2);
        assert!(w.unchanged(c2));
    }

    #[test]
    fn stale_stamp_misses_and_bytes_stay_bounded() {
        let caches = Caches::new(CacheSizes {
            records: 64 << 10,
            vectors: 64 << 10,
            results: 0,
        });
        let id = EntityId::from_u128(7);
        let s = caches.stamp(1, id);
        let rec = Arc::new(CachedRecord {
            payload: Map::new(),
            vectors: Default::default(),
            version: 1,
            updated_at: 0,
        });
        caches.put_entity(1, id, s, rec, Arc::from(vec![1.0f32; 4]));
        assert!(caches.entity(1, id, s).is_some());
        caches.invalidate(1, id);
        assert!(caches.entity(1, id, caches.stamp(1, id)).is_none());
        // Fill far beyond the bound: the weight never exceeds it.
        for i in 0..10_000u128 {
            let id = EntityId::from_u128(i);
            let rec = Arc::new(CachedRecord {
                payload: Map::new(),
                vectors: Default::default(),
                version: 1,
                updated_at: 0,
            });
            caches.put_entity(1, id, caches.stamp(1, id), rec, Arc::from(vec![0.5f32; 64]));
        }
        let st = caches.stats();
        assert!(st.records.bytes <= st.records.capacity, "{st:?}");
        assert!(st.vectors.bytes <= st.vectors.capacity, "{st:?}");
        assert!(st.vectors.entries > 0 && st.vectors.entries < 10_000);
    }
}
