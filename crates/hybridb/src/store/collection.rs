//! The state every handle to one collection shares: its stored config and table names, its
//! in-memory index state, its read-cache window and metrics labels.
//!
//! Invariant: `dropped` is set under the catalogue's write lock when the collection leaves the
//! file; everything that uses a collection checks it ([`CollectionShared::check_live`]).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::model::config::{CollectionConfig, StoredCollection};
use crate::model::error::{Error, Result};
use crate::observe::cache::WriteWindow;
use crate::query::state::IndexState;

/// State shared by every handle to one collection.
pub(crate) struct CollectionShared {
    pub(crate) name: String,
    pub(crate) stored: StoredCollection,
    pub(crate) index: IndexState,
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
        CollectionShared {
            metrics: crate::observe::OpMetrics::new(&name),
            name,
            stored,
            index,
            window: WriteWindow::default(),
            dropped: AtomicBool::new(false),
        }
    }

    /// Takes over the index of a freshly loaded copy of this collection (writer recovery).
    pub(crate) fn replace_index_from(&self, fresh: CollectionShared) {
        self.index.replace_from(fresh.index);
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
