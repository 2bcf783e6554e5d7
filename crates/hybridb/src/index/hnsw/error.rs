//! Errors of the HNSW index: one enum for mutations, one for decoding checkpoints.

use std::fmt;

/// Why an insert, update or removal was refused. Nothing was changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HnswError {
    /// The vector's length differs from the index dimension.
    DimensionMismatch {
        /// Dimension of the index.
        expected: usize,
        /// Length of the vector given.
        got: usize,
    },
    /// The slot is not below the capacity; grow the index first with [`super::Hnsw::reserve`].
    SlotOutOfCapacity {
        /// The slot given.
        slot: u32,
        /// The current capacity.
        capacity: usize,
    },
    /// Another thread is inserting into the same slot right now.
    SlotBusy {
        /// The slot given.
        slot: u32,
    },
    /// The index's quantizer cannot encode the vector (say, a norm beyond `f32`).
    Encode(String),
}

impl fmt::Display for HnswError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DimensionMismatch { expected, got } => {
                write!(
                    f,
                    "vector has {got} dimensions, the index expects {expected}"
                )
            }
            Self::SlotOutOfCapacity { slot, capacity } => {
                write!(f, "slot {slot} is beyond the index capacity {capacity}")
            }
            Self::SlotBusy { slot } => write!(f, "slot {slot} is being inserted by another thread"),
            Self::Encode(why) => write!(f, "the vector cannot be quantized: {why}"),
        }
    }
}

impl std::error::Error for HnswError {}

/// Why a serialized index could not be read. Decoding never panics on bad input.
#[derive(Debug)]
#[non_exhaustive]
pub enum DecodeError {
    /// Reading from the source failed.
    Io(std::io::Error),
    /// The input does not start with the HNSW checkpoint magic.
    BadMagic,
    /// The format version is not one this build can read.
    UnsupportedVersion(u32),
    /// The input ends before the structure it declares.
    Truncated,
    /// The stored checksum does not match the content.
    ChecksumMismatch {
        /// Checksum stored in the input.
        stored: u32,
        /// Checksum computed over the content.
        computed: u32,
    },
    /// The content passed the checksum but is not a valid index (names what is wrong).
    Corrupt(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "reading the index failed: {e}"),
            Self::BadMagic => f.write_str("not an hnsw index checkpoint (bad magic)"),
            Self::UnsupportedVersion(v) => write!(f, "unsupported hnsw format version {v}"),
            Self::Truncated => f.write_str("hnsw checkpoint is truncated"),
            Self::ChecksumMismatch { stored, computed } => write!(
                f,
                "hnsw checkpoint checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            Self::Corrupt(what) => write!(f, "hnsw checkpoint is corrupt: {what}"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for DecodeError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}
