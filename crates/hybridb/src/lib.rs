//! hybridb (work in progress)
pub mod index;
