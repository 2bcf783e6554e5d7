//! Qdrant point ids (unsigned integers and UUIDs) onto hybridb's UUID [`EntityId`], and back.
//!
//! The mapping is reversible and keeps Qdrant's id order:
//! - the integer `n` is the UUID whose first 8 bytes are zero and whose last 8 bytes are `n`
//!   big-endian (`00000000-0000-0000-XXXX-XXXXXXXXXXXX`);
//! - a UUID is itself.
//!
//! An id whose first 8 bytes are zero therefore always comes back as an integer. Such UUIDs
//! have version 0 and are never generated (hybridb makes v7 and v5 ids, clients v4), so a
//! Qdrant request that sends one as a UUID string is refused rather than silently turned into
//! an integer. Because the bytes are big-endian and integers sit below every other UUID, id
//! order (scroll order) is Qdrant's: integers ascending, then UUIDs.

use std::fmt;

use hybridb::EntityId;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};

use crate::error::{ApiError, ErrorCode};

/// A Qdrant point id: an unsigned integer or a UUID (sent as a string in any form the
/// `uuid` crate reads; answered in hyphenated form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PointId {
    /// An unsigned integer id.
    Num(u64),
    /// A UUID id.
    Uuid(uuid::Uuid),
}

impl PointId {
    /// The entity id this point id maps to; errors for a UUID in the integer range.
    pub fn to_entity(self) -> Result<EntityId, ApiError> {
        match self {
            PointId::Num(n) => Ok(EntityId::from_u128(u128::from(n))),
            PointId::Uuid(u) if u.as_u128() >> 64 == 0 => Err(ApiError::new(
                ErrorCode::InvalidId,
                format!(
                    "point id {u}: UUIDs whose first 8 bytes are zero stand for integer ids \
                     here; send the integer {} instead",
                    u.as_u128() as u64
                ),
            )),
            PointId::Uuid(u) => Ok(EntityId::from_uuid(u)),
        }
    }

    /// The point id of an entity id (the reverse of [`PointId::to_entity`]).
    pub fn of(id: EntityId) -> PointId {
        let v = id.as_uuid().as_u128();
        if v >> 64 == 0 {
            PointId::Num(v as u64)
        } else {
            PointId::Uuid(*id.as_uuid())
        }
    }

    /// Reads a point id from a path segment: digits are an integer, anything else a UUID.
    pub fn parse(s: &str) -> Result<PointId, ApiError> {
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map(PointId::Num).map_err(|_| bad_id(s));
        }
        uuid::Uuid::parse_str(s)
            .map(PointId::Uuid)
            .map_err(|_| bad_id(s))
    }
}

fn bad_id(s: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidId,
        format!("point id {s:?} is neither an unsigned integer nor a UUID"),
    )
}

impl fmt::Display for PointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointId::Num(n) => write!(f, "{n}"),
            PointId::Uuid(u) => write!(f, "{}", u.hyphenated()),
        }
    }
}

impl Serialize for PointId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PointId::Num(n) => s.serialize_u64(*n),
            PointId::Uuid(u) => s.collect_str(&u.hyphenated()),
        }
    }
}

impl<'de> Deserialize<'de> for PointId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PointId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an unsigned integer or a UUID string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PointId, E> {
                Ok(PointId::Num(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PointId, E> {
                u64::try_from(v)
                    .map(PointId::Num)
                    .map_err(|_| E::custom(format!("point id {v} is negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PointId, E> {
                uuid::Uuid::parse_str(v)
                    .map(PointId::Uuid)
                    .map_err(|_| E::custom(format!("point id {v:?} is not a UUID")))
            }
        }
        d.deserialize_any(V)
    }
}

impl utoipa::PartialSchema for PointId {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
            )
            .description(Some("A point id: an unsigned integer or a UUID"))
            .into()
    }
}

impl utoipa::ToSchema for PointId {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("QdrantPointId")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_uuids_round_trip_in_qdrant_order() {
        let u = uuid::Uuid::parse_str("5c56c793-69f3-4fbf-87e6-c4bf54c28c26").unwrap();
        let ids = [
            PointId::Num(0),
            PointId::Num(1),
            PointId::Num(u64::MAX),
            PointId::Uuid(u),
        ];
        let entities: Vec<EntityId> = ids.iter().map(|i| i.to_entity().unwrap()).collect();
        for (id, e) in ids.iter().zip(&entities) {
            assert_eq!(PointId::of(*e), *id);
        }
        assert!(entities.windows(2).all(|w| w[0] < w[1]), "{entities:?}");
    }

    #[test]
    fn reserved_uuids_and_bad_forms_are_refused() {
        let reserved = PointId::parse("00000000-0000-0000-0000-000000000007").unwrap();
        assert_eq!(reserved.to_entity().unwrap_err().code, ErrorCode::InvalidId);
        assert_eq!(PointId::parse("42").unwrap(), PointId::Num(42));
        assert!(PointId::parse("-1").is_err());
        assert!(PointId::parse("99999999999999999999999").is_err());
        assert!(serde_json::from_str::<PointId>("-3").is_err());
        assert!(serde_json::from_str::<PointId>("1.5").is_err());
        assert_eq!(
            serde_json::to_string(&PointId::Num(3)).unwrap(),
            "3".to_string()
        );
        let u: PointId = serde_json::from_str("\"5C56C79369F34FBF87E6C4BF54C28C26\"").unwrap();
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            "\"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\""
        );
    }
}
