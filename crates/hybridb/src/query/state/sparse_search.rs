//! Searching a named sparse vector: exact top-k by dot product with MaxScore pruning, the
//! filter applied inside the scoring loop (so `k` hits come back whenever `k` matching entities
//! share a dimension with the query); and the search over posting lists it shares with text
//! indexes ([`IndexState::search_postings`]).

use super::*;
use crate::model::sparse::SparseVector;
use crate::query::payload::eval::{Context, evaluate};
use crate::query::search::Plan;
use std::time::Instant;

impl IndexState {
    /// The `k` live entities with the sparse vector `name` that score highest against
    /// `query` among those `input` allows (`None`: all). A filter the postings cannot answer
    /// comes back as [`Searched::NeedsPayloads`], as for dense searches.
    pub(crate) fn search_sparse(
        &self,
        name: &str,
        query: &SparseVector,
        k: usize,
        input: Option<FilterInput<'_>>,
    ) -> Result<Searched, FilterProblem> {
        self.search_postings(Plan::Sparse, k, input, |pass| {
            match read(&self.named).get(name) {
                Some(Named::Sparse(s)) => {
                    let weighted;
                    let query = if s.idf {
                        weighted = s.index.idf_weighted(query);
                        &weighted
                    } else {
                        query
                    };
                    (s.index.search_with_ties(query, k, pass), s.index.len())
                }
                // Dropped since the caller checked the name: no entity has it.
                _ => (Vec::new(), 0),
            }
        })
    }

    /// The one search over posting lists (sparse vectors, text indexes): resolves `input` to
    /// the allowed live slots under the slot table's lock, runs `top` with that predicate — it
    /// returns `(slot, score)` best first with every document tied with the k-th (the index
    /// breaks ties by slot, the engine by id), and the number of documents the index holds —
    /// and turns the answer into hits (scores are "higher is better"; the engine's distances
    /// are their negation).
    pub(super) fn search_postings(
        &self,
        plan: Plan,
        k: usize,
        input: Option<FilterInput<'_>>,
        top: impl FnOnce(&dyn Fn(u32) -> bool) -> (Vec<(u32, f32)>, usize),
    ) -> Result<Searched, FilterProblem> {
        let t0 = Instant::now();
        let table = read(&self.slots);
        let live = table.live();
        let mut expect = None;
        let allowed: Option<SlotBitset> = match input {
            None => None,
            Some(FilterInput::Slots {
                mut bits,
                expect: e,
            }) => {
                bits.intersect_with(live);
                expect = Some(e);
                Some(bits)
            }
            Some(FilterInput::Filter { filter, id_slots }) => {
                let payload = read(&self.payload);
                let texts = read(&self.texts);
                let evaluated = evaluate(
                    filter,
                    &Context {
                        index: &payload,
                        texts: &texts,
                        universe: live,
                        id_slots,
                    },
                )?;
                if !evaluated.exact {
                    return Ok(Searched::NeedsPayloads(evaluated.bits));
                }
                Some(evaluated.bits)
            }
        };
        let filter_micros = t0.elapsed().as_micros() as u64;
        let t1 = Instant::now();
        let pass = |slot: u32| match &allowed {
            Some(bits) => bits.contains(slot),
            None => live.contains(slot),
        };
        let (found, held) = top(&pass);
        let matching = allowed.as_ref().map_or(held, SlotBitset::len);
        let (hits, slots) = super::planned::ranked_hits(
            found
                .into_iter()
                .filter_map(|(slot, score)| {
                    let id = table.id(slot)?;
                    match expect {
                        Some(e) if e.get(&slot) != Some(&id) => None,
                        _ => Some((id, -score, slot)),
                    }
                })
                .collect(),
            k,
        );
        Ok(Searched::Done(Planned {
            hits,
            slots,
            plan,
            fallback: false,
            matching,
            estimated: false,
            live: table.live_count(),
            ef: k,
            filter_micros,
            search_micros: t1.elapsed().as_micros() as u64,
        }))
    }
}

impl IndexState {
    /// `query` as the sparse vector `name` scores it: IDF-weighted when the vector has the
    /// modifier (unchanged otherwise, or if the vector is gone).
    pub(crate) fn sparse_query(&self, name: &str, query: &SparseVector) -> SparseVector {
        match read(&self.named).get(name) {
            Some(Named::Sparse(s)) if s.idf => s.index.idf_weighted(query),
            _ => query.clone(),
        }
    }
}
