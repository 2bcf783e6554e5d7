//! Named vectors in memory: per named dense vector its own vector index, planner costs and the
//! set of slots that have it; per sparse vector its posting lists.
//!
//! Invariants (on top of the module's):
//! - a dense vector's `present` set is exactly the slots whose vector its index holds: a slot
//!   enters `present` after its vector entered the index and leaves it before its vector
//!   leaves, so a search among `present` slots never meets a slot without a vector;
//! - named changes of a commit are applied before the slot table changes (so a new entity's
//!   vectors are searchable when its slot becomes live, and a deleted entity's vectors are gone
//!   before its slot can be reused).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::index::bitset::SlotBitset;
use crate::index::flat::FlatIndex;
use crate::index::hnsw_index::HnswIndex;
use crate::index::originals::IndexEnv;
use crate::index::sparse::SparseIndex;
use crate::index::{IndexMetric, VectorIndex};
use crate::model::config::{IndexKind, Metric, Quantization, VectorConfig};
use crate::model::entity::NamedVector;
use crate::model::error::{Result, corrupted};
use crate::model::sync::{lock, read, write};
use crate::query::plan;

/// A named dense vector's index.
pub(crate) struct DenseNamed {
    pub(crate) index: Box<dyn VectorIndex>,
    /// Slots whose vector the index holds (see the module invariants).
    pub(crate) present: SlotBitset,
    /// Measured plan costs of this vector's index.
    pub(crate) costs: Mutex<Option<plan::Costs>>,
    /// Vectors set or removed since the last checkpoint of this index.
    pub(crate) changed: AtomicU64,
    /// Seq covered by this index's checkpoint file (`u64::MAX`: none).
    pub(crate) checkpoint_seq: AtomicU64,
}

impl DenseNamed {
    /// The seq this index's checkpoint covers, if it has one.
    pub(crate) fn checkpoint_seq(&self) -> Option<u64> {
        let s = self.checkpoint_seq.load(Ordering::Acquire);
        (s != u64::MAX).then_some(s)
    }
}

/// A named sparse vector's index.
pub(crate) struct SparseNamed {
    pub(crate) idf: bool,
    pub(crate) index: SparseIndex,
}

/// One named vector's in-memory index.
pub(crate) enum Named {
    Dense(Box<DenseNamed>),
    Sparse(SparseNamed),
}

/// Every named vector of a collection, by name.
pub(crate) type NamedIndexes = BTreeMap<String, Named>;

/// A vector index for `dim`, `metric` and `kind` (HNSW inserts on up to `threads` threads;
/// an HNSW index trains `quantization` once it holds enough vectors).
pub(crate) fn vector_index(
    dim: usize,
    metric: Metric,
    kind: IndexKind,
    quantization: Quantization,
    env: &IndexEnv,
) -> Box<dyn VectorIndex> {
    let metric = IndexMetric::from(metric);
    match kind {
        IndexKind::Exact => Box::new(FlatIndex::new(dim, metric)),
        IndexKind::Hnsw {
            m, ef_construction, ..
        } => Box::new(
            HnswIndex::new(
                dim,
                metric,
                m as usize,
                ef_construction as usize,
                env.threads,
            )
            .with_quantization(quantization)
            .with_originals_in(env.originals_dir.as_deref()),
        ),
    }
}

impl Named {
    /// An empty index for a declared vector.
    pub(crate) fn new(config: &VectorConfig, env: &IndexEnv) -> Self {
        match *config {
            VectorConfig::Dense {
                dim,
                metric,
                index,
                quantization,
            } => Named::Dense(Box::new(DenseNamed {
                index: vector_index(dim as usize, metric, index, quantization, env),
                present: SlotBitset::new(),
                costs: Mutex::new(None),
                changed: AtomicU64::new(0),
                checkpoint_seq: AtomicU64::new(u64::MAX),
            })),
            VectorConfig::Sparse { idf } => Named::Sparse(SparseNamed {
                idf,
                index: SparseIndex::new(),
            }),
        }
    }

    fn holds(&self, slot: u32) -> bool {
        match self {
            Named::Dense(d) => d.present.contains(slot),
            Named::Sparse(s) => s.index.get(slot).is_some(),
        }
    }

    /// Number of entities that have this vector.
    pub(crate) fn len(&self) -> usize {
        match self {
            Named::Dense(d) => d.present.len(),
            Named::Sparse(s) => s.index.len(),
        }
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        match self {
            Named::Dense(d) => d.index.memory_bytes() + d.present.memory_bytes(),
            Named::Sparse(s) => s.index.memory_bytes(),
        }
    }
}

/// A commit's changes to the named vectors, borrowed from its applies.
#[derive(Default)]
pub(crate) struct NamedChanges<'a> {
    /// `(name, slot)` whose vector goes away (before any set).
    pub(crate) removes: Vec<(&'a Arc<str>, u32)>,
    /// Slots of deleted entities (their every named vector goes away).
    pub(crate) deleted: &'a [u32],
    /// New vectors (dense ones in index form).
    pub(crate) sets: Vec<(&'a Arc<str>, u32, &'a NamedVector)>,
}

impl NamedChanges<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        self.removes.is_empty() && self.deleted.is_empty() && self.sets.is_empty()
    }

    /// Applies the changes (the caller holds the named indexes' write lock). An error means an
    /// index refused a change and no longer matches the database.
    pub(crate) fn apply(self, named: &mut NamedIndexes) -> Result<()> {
        // Removals first, by vector: explicit ones, every vector of deleted slots, and the old
        // vector of each slot that gets a new one.
        let mut out: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (name, slot) in &self.removes {
            out.entry(name.to_string()).or_default().push(*slot);
        }
        for (name, slot, _) in &self.sets {
            out.entry(name.to_string()).or_default().push(*slot);
        }
        for (name, index) in named.iter() {
            for &slot in self.deleted {
                if index.holds(slot) {
                    out.entry(name.clone()).or_default().push(slot);
                }
            }
        }
        for (name, slots) in out {
            let Some(index) = named.get_mut(&name) else {
                return Err(corrupted(format!("a write named unknown vector {name:?}")));
            };
            match index {
                Named::Dense(d) => {
                    let held: Vec<u32> =
                        slots.into_iter().filter(|&s| d.present.remove(s)).collect();
                    if !held.is_empty() {
                        d.index.remove(&held);
                    }
                }
                Named::Sparse(s) => slots.into_iter().for_each(|slot| s.index.remove(slot)),
            }
        }
        let mut dense: BTreeMap<&str, Vec<(u32, &[f32])>> = BTreeMap::new();
        for &(name, slot, value) in &self.sets {
            let Some(index) = named.get_mut(&**name) else {
                return Err(corrupted(format!("a write named unknown vector {name:?}")));
            };
            match (index, value) {
                (Named::Dense(_), NamedVector::Dense(v)) => {
                    dense.entry(name).or_default().push((slot, v.as_slice()));
                }
                (Named::Sparse(s), NamedVector::Sparse(v)) => s.index.insert(slot, v.clone()),
                _ => return Err(corrupted(format!("vector {name:?} changed kind"))),
            }
        }
        for (name, items) in dense {
            if let Some(Named::Dense(d)) = named.get_mut(name) {
                let needed = items
                    .iter()
                    .map(|(s, _)| *s as usize + 1)
                    .max()
                    .unwrap_or(0);
                d.index.reserve(needed);
                let codes = d.index.codes_generation();
                d.index
                    .insert(&items)
                    .map_err(|e| corrupted(format!("vector {name:?} refused an insert: {e}")))?;
                if d.index.codes_generation() != codes {
                    // The walk and scan now rank by new codes: measure their costs again.
                    *lock(&d.costs) = None;
                }
                for (slot, _) in &items {
                    d.present.insert(*slot);
                }
                d.changed.fetch_add(items.len() as u64, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

impl super::IndexState {
    /// Changes the codes of the default vector's index (`using` `None`) or of the named dense
    /// vector `using` online, training them now if the index is large enough (see
    /// [`HnswIndex::set_quantization`]); called with the current code, it retrains. The
    /// index's checkpoint is due afterwards (its config hash changed). Holds the apply lock, so
    /// no commit's changes apply meanwhile; searches go on.
    ///
    /// # Errors
    /// `InvalidConfig` if the index is not HNSW (an exact index keeps `f32` only) or training
    /// failed (the walk then stays on `f32`); `corrupted` if `using` names no dense vector.
    ///
    /// Then the index's originals move where the new setting keeps them
    /// ([`HnswIndex::place_originals`]: into a file in `originals_dir` when quantized, into
    /// memory when not), under the index's write lock: searches of this collection wait for
    /// the copy.
    pub(crate) fn set_quantization(
        &self,
        using: Option<&str>,
        quantization: Quantization,
        originals_dir: Option<&std::path::Path>,
    ) -> Result<()> {
        let _apply = lock(&self.apply_lock);
        let requantize = |index: &dyn VectorIndex| -> Result<()> {
            match index.as_hnsw() {
                Some(h) => h.set_quantization(quantization).map_err(|e| {
                    crate::model::error::Error::InvalidConfig(format!(
                        "training {quantization:?} codes failed ({e}); the index searches \
                         f32 vectors"
                    ))
                }),
                None if quantization.is_none() => Ok(()),
                None => Err(crate::model::error::Error::InvalidConfig(
                    "an exact index keeps f32 vectors only".into(),
                )),
            }
        };
        let place = |index: &mut Box<dyn VectorIndex>| {
            if let Some(h) = index.as_hnsw_mut() {
                h.place_originals(originals_dir);
            }
        };
        match using {
            None => {
                let trained = requantize(read(&self.vectors).as_ref());
                place(&mut write(&self.vectors));
                trained?;
                *lock(&self.costs) = None;
                self.changed.fetch_add(1, Ordering::Relaxed);
            }
            Some(name) => {
                let missing = || corrupted(format!("no dense vector index named {name:?}"));
                // Trained under the read lock (searches go on); placed under the write lock.
                let trained = match read(&self.named).get(name) {
                    Some(Named::Dense(d)) => requantize(d.index.as_ref()),
                    _ => return Err(missing()),
                };
                let mut named = write(&self.named);
                let Some(Named::Dense(d)) = named.get_mut(name) else {
                    return Err(missing());
                };
                place(&mut d.index);
                trained?;
                *lock(&d.costs) = None;
                d.changed.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}
