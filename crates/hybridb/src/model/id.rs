//! Entity identifiers.
//!
//! An [`EntityId`] is a UUID. Generated ids are version 7 (time-ordered, so batched inserts land
//! near each other in redb's B-trees); ids derived from a user key are version 5 in a fixed
//! hybridb namespace, so the same key always maps to the same id. Stored as the UUID's 16 bytes in
//! big-endian order: byte order is id order.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace for [`EntityId::from_key`] (a fixed v4 UUID; changing it changes every derived id).
const KEY_NAMESPACE: Uuid = Uuid::from_u128(0x6b1d_5a2e_8f43_4c71_9a0e_3d52_c7b8_e914);

/// The identifier of an entity: a UUID. Ordered as its bytes are (as redb orders its keys).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntityId(Uuid);

impl Ord for EntityId {
    /// Byte order, compared as one big-endian `u128` (the same order, without a `memcmp`
    /// call: ids are compared often when results are sorted, deduplicated and fused).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.as_u128().cmp(&other.0.as_u128())
    }
}

impl PartialOrd for EntityId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl EntityId {
    /// A new time-ordered (UUID v7) id.
    pub fn new_v7() -> Self {
        EntityId(Uuid::now_v7())
    }

    /// The deterministic id (UUID v5) for a user key: the same key always gives the same id.
    pub fn from_key(key: &str) -> Self {
        EntityId(Uuid::new_v5(&KEY_NAMESPACE, key.as_bytes()))
    }

    /// Wraps an existing UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        EntityId(uuid)
    }

    /// Builds an id from its 16 big-endian bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        EntityId(Uuid::from_bytes(bytes))
    }

    /// Builds an id from a `u128` (handy for tests and numeric keys).
    pub const fn from_u128(v: u128) -> Self {
        EntityId(Uuid::from_u128(v))
    }

    /// The UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The 16 big-endian bytes; their order is the id order.
    pub const fn to_bytes(&self) -> [u8; 16] {
        *self.0.as_bytes()
    }

    /// The smallest possible id (all zero bytes).
    pub const MIN: EntityId = EntityId(Uuid::nil());
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntityId({})", self.0.hyphenated())
    }
}

impl From<Uuid> for EntityId {
    fn from(u: Uuid) -> Self {
        EntityId(u)
    }
}

impl redb::Value for EntityId {
    type SelfType<'a> = EntityId;
    type AsBytes<'a> = [u8; 16];

    fn fixed_width() -> Option<usize> {
        Some(16)
    }

    fn from_bytes<'a>(data: &'a [u8]) -> EntityId
    where
        Self: 'a,
    {
        // redb hands back exactly the bytes it stored for this fixed-width type.
        let mut b = [0u8; 16];
        b.copy_from_slice(&data[..16]);
        EntityId::from_bytes(b)
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a EntityId) -> [u8; 16]
    where
        Self: 'b,
    {
        value.to_bytes()
    }

    fn type_name() -> redb::TypeName {
        redb::TypeName::new("hybridb::EntityId/v1")
    }
}

impl redb::Key for EntityId {
    fn compare(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        a.cmp(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::error::Error;

    proptest::proptest! {
        /// Ids order as their bytes do (redb's key order).
        #[test]
        fn ids_order_as_their_bytes(a: u128, b: u128, flip in 0usize..16) {
            // Ids that share a prefix too, as v7 ids of one millisecond do.
            let b = if flip % 2 == 0 { b } else { a ^ (1u128 << (flip * 8)) };
            let (x, y) = (EntityId::from_u128(a), EntityId::from_u128(b));
            proptest::prop_assert_eq!(x.cmp(&y), x.as_uuid().as_bytes().cmp(y.as_uuid().as_bytes()));
        }
    }

    #[test]
    fn from_key_is_deterministic_and_distinct() {
        assert_eq!(EntityId::from_key("a"), EntityId::from_key("a"));
        assert_ne!(EntityId::from_key("a"), EntityId::from_key("b"));
        assert_eq!(EntityId::from_key("a").as_uuid().get_version_num(), 5);
    }

    #[test]
    fn v7_ids_increase() {
        let a = EntityId::new_v7();
        let b = EntityId::new_v7();
        assert!(a < b);
        assert_eq!(a.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn parse_display_round_trip_and_errors() {
        let id = EntityId::new_v7();
        assert_eq!(id.to_string().parse::<EntityId>().unwrap(), id);
        let err = "not-a-uuid".parse::<EntityId>().unwrap_err();
        assert!(matches!(err, Error::InvalidId { .. }));
        assert!(err.is_user_error());
    }

    #[test]
    fn byte_order_is_id_order() {
        let a = EntityId::from_u128(1);
        let b = EntityId::from_u128(256);
        assert!(a < b);
        assert!(a.to_bytes() < b.to_bytes());
    }
}
