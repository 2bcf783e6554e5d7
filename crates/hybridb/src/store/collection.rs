//! The state every handle to one collection shares: its stored config and table names, its
//! in-memory index state, its read-cache window and metrics labels.
//!
//! Invariant: `dropped` is set under the catalogue's write lock when the collection leaves the
//! file; everything that uses a collection checks it ([`CollectionShared::check_live`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::model::config::{
    CollectionConfig, Quantization, StoredCollection, TextIndexConfig, VectorConfig,
};
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
    /// The text indexes declared now (changed only by the writer thread).
    texts: RwLock<Arc<TextDecls>>,
    /// The user's metadata now (changed only by the writer thread).
    metadata: RwLock<Arc<serde_json::Map<String, serde_json::Value>>>,
    /// The default vector's quantization now (changed only by the writer thread;
    /// `stored.config.quantization` is the one at open).
    quantization: RwLock<Quantization>,
    /// Moved by the writer around every write to this collection (cache validity).
    pub(crate) window: WriteWindow,
    /// Counters and histograms of this collection's operations.
    pub(crate) metrics: crate::observe::OpMetrics,
    dropped: AtomicBool,
}

impl CollectionShared {
    pub(crate) fn new(
        name: String,
        stored: StoredCollection,
        env: &crate::index::originals::IndexEnv,
    ) -> Self {
        let index = IndexState::new(&stored.config, env);
        index.set_texts(
            stored
                .config
                .text_indexes
                .iter()
                .map(|(field, c)| (field.clone(), crate::query::state::text::TextIndex::new(c)))
                .collect(),
        );
        Self::with_index(name, stored, index)
    }

    pub(crate) fn with_index(name: String, stored: StoredCollection, index: IndexState) -> Self {
        let decls = NamedDecls::of(&stored);
        let texts = TextDecls::of(&stored);
        CollectionShared {
            metrics: crate::observe::OpMetrics::new(&name),
            name,
            vectors: RwLock::new(Arc::new(decls)),
            texts: RwLock::new(Arc::new(texts)),
            metadata: RwLock::new(Arc::new(stored.config.metadata.clone())),
            quantization: RwLock::new(stored.config.quantization),
            stored,
            index,
            window: WriteWindow::default(),
            dropped: AtomicBool::new(false),
        }
    }

    /// Takes over the index of a freshly loaded copy of this collection (writer recovery).
    pub(crate) fn replace_index_from(&self, fresh: CollectionShared) {
        *write(&self.vectors) = fresh.named();
        *write(&self.texts) = fresh.texts();
        *write(&self.metadata) = fresh.metadata();
        *write(&self.quantization) = fresh.quantization();
        self.index.replace_from(fresh.index);
    }

    /// The named vectors declared now.
    pub(crate) fn named(&self) -> Arc<NamedDecls> {
        Arc::clone(&read(&self.vectors))
    }

    /// Rewrites this collection's stored config in `txn`: reads it, lets `change` edit it
    /// (its error leaves the transaction to be dropped), bumps `config_version` and stores it.
    /// Returns the new stored config and the database's last sequence number (the commit's).
    pub(crate) fn rewrite_stored(
        &self,
        txn: &redb::WriteTransaction,
        change: impl FnOnce(&mut StoredCollection) -> Result<()>,
    ) -> Result<(StoredCollection, u64)> {
        use crate::store::schema::{COLLECTIONS, META, META_LAST_SEQ};
        use redb::ReadableTable;
        let mut collections = txn.open_table(COLLECTIONS)?;
        let mut stored = match collections.get(self.name.as_str())? {
            Some(v) => StoredCollection::decode(v.value())?,
            None => return Err(Error::CollectionNotFound(self.name.clone())),
        };
        if stored.cid != self.stored.cid {
            return Err(corrupted("collection id changed under an open handle"));
        }
        change(&mut stored)?;
        stored.config_version += 1;
        collections.insert(self.name.as_str(), stored.encode().as_slice())?;
        let seq = txn
            .open_table(META)?
            .get(META_LAST_SEQ)?
            .map_or(0, |v| v.value());
        Ok((stored, seq))
    }

    /// The text indexes declared now.
    pub(crate) fn texts(&self) -> Arc<TextDecls> {
        Arc::clone(&read(&self.texts))
    }

    /// Replaces the declared text indexes (writer thread, after the change committed).
    pub(crate) fn set_texts(&self, decls: TextDecls) {
        *write(&self.texts) = Arc::new(decls);
    }

    /// The user's metadata now.
    pub(crate) fn metadata(&self) -> Arc<serde_json::Map<String, serde_json::Value>> {
        Arc::clone(&read(&self.metadata))
    }

    /// Replaces the metadata (writer thread, after the change committed).
    pub(crate) fn set_metadata(&self, m: serde_json::Map<String, serde_json::Value>) {
        *write(&self.metadata) = Arc::new(m);
    }

    /// Replaces the declared named vectors (writer thread, after the change committed).
    /// The default vector's quantization now.
    pub(crate) fn quantization(&self) -> Quantization {
        *read(&self.quantization)
    }

    pub(crate) fn set_quantization(&self, quantization: Quantization) {
        *write(&self.quantization) = quantization;
    }

    /// The stored config as it is now in the file, as far as the default vector's index is
    /// concerned (what its checkpoint's config hash covers).
    pub(crate) fn stored_now(&self) -> StoredCollection {
        let mut stored = self.stored.clone();
        stored.config.quantization = self.quantization();
        stored
    }

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
        config.text_indexes = self
            .texts()
            .iter()
            .map(|(field, d)| (field.clone(), d.config))
            .collect();
        config.metadata = (*self.metadata()).clone();
        config.quantization = self.quantization();
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

/// A declared text index: its internal id (names its tables) and its config.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TextDecl {
    pub tid: u32,
    pub config: TextIndexConfig,
    /// The field key, shared by the index changes that mention it.
    pub field: Arc<str>,
}

/// The text indexes of a collection, by field key.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TextDecls(BTreeMap<String, TextDecl>);

impl TextDecls {
    /// The declarations of a stored collection (each config with its id).
    pub(crate) fn of(stored: &StoredCollection) -> Self {
        TextDecls(
            stored
                .config
                .text_indexes
                .iter()
                .filter_map(|(field, config)| {
                    Some((
                        field.clone(),
                        TextDecl {
                            tid: *stored.text_ids.get(field)?,
                            config: *config,
                            field: Arc::from(field.as_str()),
                        },
                    ))
                })
                .collect(),
        )
    }

    pub(crate) fn get(&self, field: &str) -> Option<&TextDecl> {
        self.0.get(field)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &TextDecl)> {
        self.0.iter()
    }
}

/// Checks that every declared vector and text index has an id (a file whose config lacks
/// one is damaged).
pub(crate) fn check_ids(stored: &StoredCollection) -> Result<()> {
    if let Some(name) = stored
        .config
        .vectors
        .keys()
        .find(|n| !stored.vector_ids.contains_key(*n))
    {
        return Err(corrupted(format!("named vector {name:?} has no table id")));
    }
    match stored
        .config
        .text_indexes
        .keys()
        .find(|n| !stored.text_ids.contains_key(*n))
    {
        Some(field) => Err(corrupted(format!("text index {field:?} has no table id"))),
        None => Ok(()),
    }
}
