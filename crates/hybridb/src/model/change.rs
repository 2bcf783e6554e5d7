//! Change events: one per mutated entity (and per collection created or dropped), written in the
//! same transaction as the mutation under the next gap-free sequence number.

use serde::{Deserialize, Serialize};

use crate::model::error::{Result, corrupted};
use crate::model::id::EntityId;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChangeKind {
    /// A new entity was written.
    EntityCreated,
    /// An existing entity's vector changed (its payload may have changed too:
    /// see [`ChangeEvent::payload_changed`]).
    VectorUpdated,
    /// An existing entity was rewritten with the same vector.
    StateModified,
    /// An entity was deleted.
    Deleted,
    /// A collection was created.
    CollectionCreated,
    /// A collection was dropped with all its entities.
    CollectionDropped,
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// Sequence number: gap-free and increasing across the whole database.
    pub seq: u64,
    /// Collection name at the time of the event.
    pub collection: String,
    /// The entity, or `None` for collection events.
    pub id: Option<EntityId>,
    /// What happened.
    pub kind: ChangeKind,
    /// The entity's version after the write (its last version for `Deleted`; 0 for collection
    /// events).
    pub version: u64,
    /// For `VectorUpdated` and `StateModified`: whether the payload differs from the previous one.
    pub payload_changed: bool,
    /// Commit time, milliseconds since the Unix epoch.
    pub timestamp: u64,
}

const EVENT_FORMAT: u8 = 1;

impl ChangeEvent {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![EVENT_FORMAT];
        // Serialising plain structs into a Vec cannot fail.
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((&EVENT_FORMAT, rest)) => {
                postcard::from_bytes(rest).map_err(|e| corrupted(format!("change event: {e}")))
            }
            Some((v, _)) => Err(corrupted(format!("change event format {v}"))),
            None => Err(corrupted("empty change event")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = ChangeEvent {
            seq: 9,
            collection: "docs".into(),
            id: Some(EntityId::from_key("x")),
            kind: ChangeKind::VectorUpdated,
            version: 3,
            payload_changed: true,
            timestamp: 5,
        };
        assert_eq!(ChangeEvent::decode(&e.encode()).unwrap(), e);
        assert!(ChangeEvent::decode(&[2, 0]).is_err());
    }
}
