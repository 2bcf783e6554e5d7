//! The read side's language and its machinery: the filter language, search requests and
//! results, fusion and diversification of ranked lists (RRF, DBSF, MMR), payload indexes (in memory, and their row encoding), the planner's cost model, and
//! a collection's in-memory search state ([`state::IndexState`]) that plans and runs a search
//! over the vector index and the payload postings.
//!
//! Uses `model` and `index`. Invariant: a filter means the same thing whether it is answered
//! from the payload indexes or by [`filter::Filter::matches`] on a payload.

pub(crate) mod datetime;
pub(crate) mod filter;
pub mod fusion;
pub(crate) mod hybrid;
pub(crate) mod payload;
pub(crate) mod plan;
pub(crate) mod search;
pub(crate) mod state;
