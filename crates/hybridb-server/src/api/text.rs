//! The JSON shape of a text index declaration (`PUT /collections/{name}/text-indexes/{field}`
//! and `text_indexes` of a collection).

use hybridb::{TextIndexConfig, TextLanguage, TextTokenizer};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A BM25 text index on a payload field (a string, or an array of strings): how its text is
/// analyzed and BM25's parameters. Every field is optional.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"language": "english"}))]
pub struct TextIndexSpec {
    /// Language of stop words and stemming: `english`, `german`, `french`, `spanish`
    /// (absent: neither).
    pub language: Option<LanguageSpec>,
    /// Stem words (with a language). Default true.
    pub stemming: Option<bool>,
    /// Drop stop words (with a language). Default true.
    pub stop_words: Option<bool>,
    /// `unicode` (UAX #29 words; default) or `word` (runs of letters, digits and `_`).
    pub tokenizer: Option<TokenizerSpec>,
    /// BM25 term-frequency saturation, > 0. Default 1.2.
    pub k1: Option<f32>,
    /// BM25 length normalisation, 0..=1. Default 0.75.
    pub b: Option<f32>,
}

/// A text analysis language.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LanguageSpec {
    /// English.
    English,
    /// German.
    German,
    /// French.
    French,
    /// Spanish.
    Spanish,
}

/// A tokenizer.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerSpec {
    /// Unicode word boundaries.
    Unicode,
    /// Runs of letters, digits and `_`.
    Word,
}

impl TextIndexSpec {
    /// The library config (defaults for what is absent).
    pub fn to_config(&self) -> TextIndexConfig {
        let d = TextIndexConfig::default();
        TextIndexConfig {
            language: self.language.map(|l| match l {
                LanguageSpec::English => TextLanguage::English,
                LanguageSpec::German => TextLanguage::German,
                LanguageSpec::French => TextLanguage::French,
                LanguageSpec::Spanish => TextLanguage::Spanish,
            }),
            stemming: self.stemming.unwrap_or(d.stemming),
            stop_words: self.stop_words.unwrap_or(d.stop_words),
            tokenizer: match self.tokenizer {
                Some(TokenizerSpec::Word) => TextTokenizer::Word,
                _ => TextTokenizer::Unicode,
            },
            k1: self.k1.unwrap_or(d.k1),
            b: self.b.unwrap_or(d.b),
        }
    }
}
