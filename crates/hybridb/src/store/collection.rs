//! The state every handle to one collection shares: its stored config and table names, its
//! in-memory index state, its read-cache window and metrics labels.
//!
//! Invariant: `dropped` is set under the catalogue's write lock when the collection leaves the
//! file; everything that uses a collection checks it ([`CollectionShared::check_live`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::model::config::{CollectionConfig, StoredCollection, VectorConfig};
use crate::model::error::corrupted;
use crate::model::error::{Error, Result};
use crate::model::sync::{read, write};
use crate::observe::cache::WriteWindow;
use crate::query::state::IndexState;

/// State shared by every handle to one collection.
pub(crate) struct CollectionShared {
    pub(crate) name: String,
    pub(crate) stored: StoredCollection,
    pub(crate) index: IndexState,
    /// The named vectors declared now (changed only by the writer thread, which adds and
    /// removes them; `stored.config.vectors` is the set at creation).
    vectors: RwLock<Arc<NamedDecls>>,
    /// Moved by the writer around every write to this collection (cache validity).
    pub(crate) window: WriteWindow,
    /// Counters and histograms of this collection's operations.
    pub(crate) metrics: crate::observe::OpMetrics,
    dropped: AtomicBool,
}

impl CollectionShared {
    pub(crate) fn new(name: String, stored: StoredCollection, threads: usize) -> Self {
        let index = IndexState::new(&stored.config, threads);
        Self::with_index(name, stored, index)
    }

    pub(crate) fn with_index(name: String, stored: StoredCollection, index: IndexState) -> Self {
        let decls = NamedDecls::of(&stored);
        CollectionShared {
            metrics: crate::observe::OpMetrics::new(&name),
            name,
            vectors: RwLock::new(Arc::new(decls)),
            stored,
            index,
            window: WriteWindow::default(),
            dropped: AtomicBool::new(false),
        }
    }

    /// Takes over the index of a freshly loaded copy of this collection (writer recovery).
    pub(crate) fn replace_index_from(&self, fresh: CollectionShared) {
        *write(&self.vectors) = fresh.named();
        self.index.replace_from(fresh.index);
    }

    /// The named vectors declared now.
    pub(crate) fn named(&self) -> Arc<NamedDecls> {
        Arc::clone(&read(&self.vectors))
    }

    /// Replaces the declared named vectors (writer thread, after the change committed).
    pub(crate) fn set_named(&self, decls: NamedDecls) {
        *write(&self.vectors) = Arc::new(decls);
    }

    pub(crate) fn mark_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
    }

    pub(crate) fn check_live(&self) -> Result<()> {
        if self.dropped.load(Ordering::Acquire) {
            Err(Error::CollectionNotFound(self.name.clone()))
        } else {
            Ok(())
        }
    }

    pub(crate) fn info(&self) -> CollectionInfo {
        CollectionInfo {
            name: self.name.clone(),
            config: self.config(),
            created_at: self.stored.created_at,
        }
    }

    /// The current config: the one stored at creation with the payload indexes of now.
    pub(crate) fn config(&self) -> CollectionConfig {
        let mut config = self.stored.config.clone();
        config.payload_indexes = self.index.with_payload(|p| p.declared());
        config.vectors = self
            .named()
            .iter()
            .map(|(name, d)| (name.clone(), d.config))
            .collect();
        config
    }
}

/// Basic facts about a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionInfo {
    /// Collection name.
    pub name: String,
    /// Its configuration.
    pub config: CollectionConfig,
    /// Creation time, ms since the Unix epoch.
    pub created_at: u64,
}

/// A declared named vector: its internal id (names its tables) and its config.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Declared {
    pub vid: u32,
    pub config: VectorConfig,
    /// The name, shared by the index changes that mention it.
    pub name: Arc<str>,
}

/// The named vectors of a collection, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct NamedDecls(BTreeMap<String, Declared>);

impl NamedDecls {
    /// The declarations of a stored collection (each config with its id).
    pub(crate) fn of(stored: &StoredCollection) -> Self {
        NamedDecls(
            stored
                .config
                .vectors
                .iter()
                .filter_map(|(name, config)| {
                    Some((
                        name.clone(),
                        Declared {
                            vid: *stored.vector_ids.get(name)?,
                            config: *config,
                            name: Arc::from(name.as_str()),
                        },
                    ))
                })
                .collect(),
        )
    }

    /// Checks that every declared vector has an id (a file whose config lacks one is damaged).
    pub(crate) fn check(stored: &StoredCollection) -> Result<()> {
        match stored
            .config
            .vectors
            .keys()
            .find(|n| !stored.vector_ids.contains_key(*n))
        {
            Some(name) => Err(corrupted(format!("named vector {name:?} has no table id"))),
            None => Ok(()),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Declared> {
        self.0.get(name)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Declared)> {
        self.0.iter()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
