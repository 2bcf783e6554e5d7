//! The coordination log's records and their encodings (tables `coord.txns`, `coord.staged`,
//! `coord.sagas`; see `docs/format.md`).
//!
//! Every value is a format byte followed by postcard. Payloads inside staged writes are kept as
//! JSON text and vectors as little-endian `f32` bytes (postcard cannot encode arbitrary JSON,
//! and bytes keep vectors exact).
//!
//! Invariant: a transaction's state only moves forward:
//! `Active -> {Committing -> Committed, Aborting -> Aborted}`; `Committing` is written (and
//! made durable) before any participant is told to commit.

use serde::{Deserialize, Serialize};

use crate::model::entity::{Entity, encode_vector};
use crate::model::error::{Result, corrupted};
use crate::model::id::EntityId;
use crate::store::schema::{COORD_SAGAS, COORD_STAGED, COORD_TXNS};

const FORMAT: u8 = 1;

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT];
    // Serialising plain structs into a Vec cannot fail.
    out.extend(postcard::to_allocvec(value).unwrap_or_default());
    out
}

fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T> {
    match bytes.split_first() {
        Some((&FORMAT, rest)) => {
            postcard::from_bytes(rest).map_err(|e| corrupted(format!("{what}: {e}")))
        }
        Some((v, _)) => Err(corrupted(format!("{what}: unknown format {v}"))),
        None => Err(corrupted(format!("{what}: empty value"))),
    }
}

/// Creates the coordination tables (in a new file, or one written before they existed).
pub(crate) fn create_tables(txn: &redb::WriteTransaction) -> Result<()> {
    txn.open_table(COORD_TXNS)?;
    txn.open_table(COORD_STAGED)?;
    txn.open_table(COORD_SAGAS)?;
    txn.open_table(crate::store::schema::COORD_RETIRED)?;
    txn.open_table(crate::store::schema::ALIASES)?;
    Ok(())
}

/// Where a two-phase-commit transaction stands in the coordinator's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TxnState {
    /// Begun, participants recorded, no decision yet: recovery aborts it.
    Active,
    /// Decided to commit (durably, before phase 2); some participants may not know yet:
    /// recovery re-sends commit.
    Committing,
    /// Decided to abort; some participants may not know yet: recovery re-sends abort.
    Aborting,
    /// Every participant committed.
    Committed,
    /// Every participant aborted.
    Aborted,
}

impl TxnState {
    /// True once every participant has acknowledged the outcome.
    pub fn is_final(self) -> bool {
        matches!(self, TxnState::Committed | TxnState::Aborted)
    }
}

/// One transaction in `coord.txns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TxnRecord {
    /// Participant names in prepare order (the built-in one is [`super::two_phase::STORE`]).
    pub participants: Vec<String>,
    pub state: TxnState,
    /// Why it aborted, if it did.
    pub reason: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

impl TxnRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        decode(bytes, "coordination transaction record")
    }
}

/// One staged write of the built-in participant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum StagedOp {
    Upsert {
        id: EntityId,
        payload_json: String,
        vector_le: Vec<u8>,
    },
    Delete {
        id: EntityId,
    },
}

impl StagedOp {
    pub(crate) fn upsert(entity: &Entity) -> Self {
        StagedOp::Upsert {
            id: entity.id,
            payload_json: entity.payload.to_string(),
            vector_le: encode_vector(&entity.vector),
        }
    }

    /// Back to a write operation. Staged values were validated at prepare, so a failure here
    /// means the row was damaged.
    pub(crate) fn to_write_op(&self) -> Result<crate::store::write::WriteOp> {
        Ok(match self {
            StagedOp::Upsert {
                id,
                payload_json,
                vector_le,
            } => {
                let payload = serde_json::from_str(payload_json)
                    .map_err(|e| corrupted(format!("staged payload of {id}: {e}")))?;
                if vector_le.len() % 4 != 0 {
                    return Err(corrupted(format!("staged vector of {id}")));
                }
                let vector = vector_le
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                crate::store::write::WriteOp::Upsert {
                    entity: Entity::new(*id, payload, vector),
                    expected_version: None,
                }
            }
            StagedOp::Delete { id } => crate::store::write::WriteOp::Delete { id: *id },
        })
    }
}

/// The writes to one collection within a staged batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StagedPart {
    /// The collection's internal id (never reused, unlike names).
    pub cid: u64,
    /// Its name when staged (for messages).
    pub collection: String,
    pub ops: Vec<StagedOp>,
}

/// Everything the built-in participant prepared for one transaction (`coord.staged`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StagedBatch {
    pub parts: Vec<StagedPart>,
}

impl StagedBatch {
    pub(crate) fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        decode(bytes, "staged two-phase-commit batch")
    }
}

/// Where a saga stands in its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SagaState {
    /// Going forward: steps `0..next` are done, step `next` is to run (it may have partly run
    /// before a crash, so steps are idempotent).
    Running {
        /// The step to run next.
        next: u32,
    },
    /// Going backward: steps `0..pending` are to be compensated, the last one first (the
    /// failed step included, so compensations accept a step that never ran).
    Compensating {
        /// How many steps remain to compensate.
        pending: u32,
    },
    /// Every step ran.
    Completed,
    /// Every started step was compensated.
    Compensated,
}

impl SagaState {
    /// True once the saga has nothing left to do.
    pub fn is_final(self) -> bool {
        matches!(self, SagaState::Completed | SagaState::Compensated)
    }
}

/// One saga in `coord.sagas`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SagaRecord {
    /// Names the definition that resumes it.
    pub kind: String,
    /// The saga's parameters, JSON text.
    pub params: String,
    /// Step names, in order.
    pub steps: Vec<String>,
    pub state: SagaState,
    /// State the steps keep between runs (JSON text), e.g. a copy cursor.
    pub data: String,
    /// Why it is compensating, if it is.
    pub error: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

impl SagaRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        encode(self)
    }
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        decode(bytes, "saga record")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let t = TxnRecord {
            participants: vec!["hybridb".into(), "ledger".into()],
            state: TxnState::Committing,
            reason: None,
            created_at: 1,
            updated_at: 2,
        };
        assert_eq!(TxnRecord::decode(&t.encode()).unwrap(), t);
        let e = Entity::new(
            EntityId::from_key("a"),
            serde_json::json!({"x": [1, 2.5, "s"]}),
            vec![0.1, f32::MIN_POSITIVE, -3.0],
        );
        let b = StagedBatch {
            parts: vec![StagedPart {
                cid: 3,
                collection: "c".into(),
                ops: vec![
                    StagedOp::upsert(&e),
                    StagedOp::Delete {
                        id: EntityId::from_key("b"),
                    },
                ],
            }],
        };
        let back = StagedBatch::decode(&b.encode()).unwrap();
        assert_eq!(back, b);
        match back.parts[0].ops[0].to_write_op().unwrap() {
            crate::store::write::WriteOp::Upsert { entity, .. } => {
                assert_eq!(entity.vector, e.vector);
                assert_eq!(entity.payload, e.payload);
            }
            other => panic!("{other:?}"),
        }
        let s = SagaRecord {
            kind: "k".into(),
            params: "{}".into(),
            steps: vec!["a".into()],
            state: SagaState::Compensating { pending: 1 },
            data: "null".into(),
            error: Some("x".into()),
            created_at: 0,
            updated_at: 0,
        };
        assert_eq!(SagaRecord::decode(&s.encode()).unwrap(), s);
        assert!(TxnRecord::decode(&[9, 1]).is_err());
        assert!(TxnRecord::decode(&[]).is_err());
    }
}
