//! The JSON shapes of the change feed, backup, verify, stats and health routes.

use hybridb::{ChangeEvent, ChangeKind, EntityId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Query of `GET /changes`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesQuery {
    /// Events with a sequence number greater than this. Default 0.
    #[serde(default)]
    pub since: u64,
    /// Most events, 1..=10000. Default 1000.
    #[serde(default = "thousand")]
    pub limit: usize,
}

/// Query of `GET /changes/stream`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Stream events after this sequence number. A `Last-Event-ID` header (a reconnecting
    /// client) takes precedence. Default: the last committed event (new events only).
    pub since: Option<u64>,
}

/// One change event.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeOut {
    /// Sequence number (gap-free, increasing).
    pub seq: u64,
    /// Collection name.
    pub collection: String,
    /// The entity (absent for collection events).
    #[schema(value_type = Option<String>, format = Uuid)]
    pub id: Option<EntityId>,
    /// `entity_created`, `vector_updated`, `state_modified`, `deleted`,
    /// `collection_created` or `collection_dropped`.
    pub kind: &'static str,
    /// The entity's version after the event (0 for collection events).
    pub version: u64,
    /// For updates: whether the payload changed.
    pub payload_changed: bool,
    /// Commit time, ms since the Unix epoch.
    pub timestamp: u64,
}

impl From<ChangeEvent> for ChangeOut {
    fn from(e: ChangeEvent) -> Self {
        let kind = match e.kind {
            ChangeKind::EntityCreated => "entity_created",
            ChangeKind::VectorUpdated => "vector_updated",
            ChangeKind::StateModified => "state_modified",
            ChangeKind::Deleted => "deleted",
            ChangeKind::CollectionCreated => "collection_created",
            ChangeKind::CollectionDropped => "collection_dropped",
            _ => "other",
        };
        ChangeOut {
            seq: e.seq,
            collection: e.collection,
            id: e.id,
            kind,
            version: e.version,
            payload_changed: e.payload_changed,
            timestamp: e.timestamp,
        }
    }
}

/// Answer of `GET /changes`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesOut {
    /// Events in order.
    pub events: Vec<ChangeOut>,
    /// Pass as `since` to continue (the last event's seq, or `since` when none).
    pub next_since: u64,
}

/// Body of `POST /backup`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupBody {
    /// File name (or relative path) under the server's backup folder; must not exist.
    pub path: String,
}

/// Answer of `POST /backup`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupOut {
    /// The backup file on the server.
    pub path: String,
    /// Sequence number the backup covers.
    pub seq: u64,
    /// Entities copied.
    pub entities: u64,
    /// Index checkpoints copied.
    pub checkpoints: usize,
}

/// Body of `POST /verify`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// Rebuild every in-memory index from the tables first. Default false.
    #[serde(default)]
    pub repair: bool,
}

/// Integrity of one collection.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyCollectionOut {
    /// Name.
    pub name: String,
    /// Entities stored.
    pub entities: u64,
    /// Problems found (empty when clean).
    pub problems: Vec<String>,
}

/// Answer of `POST /verify`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifyOut {
    /// True when nothing is wrong.
    pub clean: bool,
    /// Change events stored.
    pub changes: u64,
    /// Problems outside collections.
    pub problems: Vec<String>,
    /// Per collection.
    pub collections: Vec<VerifyCollectionOut>,
}

impl From<hybridb::VerifyReport> for VerifyOut {
    fn from(r: hybridb::VerifyReport) -> Self {
        VerifyOut {
            clean: r.is_clean(),
            changes: r.changes,
            problems: r.problems,
            collections: r
                .collections
                .into_iter()
                .map(|c| VerifyCollectionOut {
                    name: c.name,
                    entities: c.entities,
                    problems: c.problems,
                })
                .collect(),
        }
    }
}

/// Writer counters.
#[derive(Debug, Serialize, ToSchema)]
pub struct WriterOut {
    /// Group commits.
    pub groups: u64,
    /// Write calls committed.
    pub commands: u64,
    /// Items written.
    pub items: u64,
    /// Failed commits.
    pub failed_commits: u64,
}

/// Per-collection numbers in `/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionStats {
    /// Name.
    pub name: String,
    /// Entities stored.
    pub count: u64,
    /// Entities in the vector index.
    pub indexed: u64,
    /// Bytes of the in-memory index.
    pub index_memory_bytes: u64,
    /// Changes not yet built into the HNSW graph (see `CollectionOut::unlinked`).
    pub unlinked: u64,
}

/// Answer of `GET /stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsOut {
    /// The database file.
    pub path: String,
    /// Sequence number of the last committed change.
    pub last_seq: u64,
    /// Writer counters since open.
    pub writer: WriterOut,
    /// Per collection.
    pub collections: Vec<CollectionStats>,
    /// Seconds since the server started.
    pub uptime_seconds: u64,
}

/// Answer of `/healthz` and `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthOut {
    /// `ok` or `ready`.
    pub status: &'static str,
}

fn thousand() -> usize {
    1000
}
