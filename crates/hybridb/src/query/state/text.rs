//! Text indexes in memory: per text-indexed payload field its analyzer and a BM25 index over
//! the collection's slots, and the text search (exact BM25 top-k with MaxScore pruning, the
//! filter inside the walk).
//!
//! Invariant: the analyzer of a field is built from its stored config, so the stored terms and
//! the terms of a query are made the same way.

use super::*;
use crate::index::bm25::{Bm25Index, Bm25Params};
use crate::index::text::{Analyzer, Language, Tokenizer};
use crate::model::config::{TextIndexConfig, TextLanguage, TextTokenizer};
use crate::query::search::Plan;

/// One field's text index.
pub(crate) struct TextIndex {
    pub(crate) analyzer: Analyzer,
    pub(crate) index: Bm25Index,
}

impl TextIndex {
    /// An empty index for `config`.
    pub(crate) fn new(config: &TextIndexConfig) -> Self {
        TextIndex {
            analyzer: analyzer_for(config),
            index: Bm25Index::new(Bm25Params {
                k1: config.k1,
                b: config.b,
            }),
        }
    }
}

/// Text indexes by field key.
pub(crate) type TextIndexes = BTreeMap<String, TextIndex>;

/// The analyzer a text index config describes.
pub(crate) fn analyzer_for(config: &TextIndexConfig) -> Analyzer {
    let tokenizer = match config.tokenizer {
        TextTokenizer::Unicode => Tokenizer::Unicode,
        TextTokenizer::Word => Tokenizer::Word,
    };
    let mut a = Analyzer::new(tokenizer);
    if let Some(language) = config.language {
        let language = match language {
            TextLanguage::English => Language::English,
            TextLanguage::German => Language::German,
            TextLanguage::French => Language::French,
            TextLanguage::Spanish => Language::Spanish,
        };
        if config.stop_words {
            a = a.with_stop_words(language);
        }
        if config.stemming {
            a = a.with_stemming(language);
        }
    }
    a
}

/// The text of a payload field: every string at its dotted key (arrays anywhere on the way
/// flattened, as filters reach values), joined by spaces; `None` if there is none.
///
/// Invariant: a string a filter's `match: {text}` reads at the key is part of this text, so
/// the text index of the field holds every term of it (`eval::text_candidates` relies on it).
pub(crate) fn field_text(
    payload: &serde_json::Map<String, serde_json::Value>,
    field: &str,
) -> Option<String> {
    let parts: Vec<&str> = crate::query::filter::leaves(payload, field)
        .filter_map(|v| v.as_str())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

impl IndexState {
    /// Replaces the text indexes (loading).
    pub(crate) fn set_texts(&self, texts: TextIndexes) {
        let _slots = write(&self.slots);
        *write(&self.texts) = texts;
    }

    /// Adds a text index (`Some`, already filled) or drops one (`None`).
    pub(crate) fn change_text(&self, field: &str, index: Option<TextIndex>) {
        let _apply = lock(&self.apply_lock);
        let _slots = write(&self.slots);
        let mut texts = write(&self.texts);
        match index {
            Some(index) => texts.insert(field.to_string(), index),
            None => texts.remove(field),
        };
        self.new_version();
    }

    /// Runs `f` on the text indexes.
    pub(crate) fn with_texts<T>(&self, f: impl FnOnce(&TextIndexes) -> T) -> T {
        f(&read(&self.texts))
    }

    /// The analyzed terms of `text` for the text index of `field` (`None`: no such index).
    pub(crate) fn text_terms(&self, field: &str, text: &str) -> Option<Vec<String>> {
        read(&self.texts).get(field).map(|t| t.analyzer.terms(text))
    }

    /// The `k` live entities whose `field` scores highest by BM25 for the analyzed `terms`
    /// among those `input` allows (`None`: all). As [`IndexState::search_sparse`] for filters.
    pub(crate) fn search_text(
        &self,
        field: &str,
        terms: &[String],
        k: usize,
        input: Option<FilterInput<'_>>,
    ) -> Result<Searched, FilterProblem> {
        self.search_postings(Plan::Text, k, input, |pass| {
            match read(&self.texts).get(field) {
                Some(t) => (t.index.search_with_ties(terms, k, pass), t.index.len()),
                // Dropped since the caller checked the field: no entity has it.
                None => (Vec::new(), 0),
            }
        })
    }
}
