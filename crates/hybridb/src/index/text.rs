//! Text analysis: turning a text into the terms a text index stores and a query looks up.
//!
//! Two tokenizers: [`Tokenizer::Unicode`] splits at Unicode (UAX #29) word boundaries
//! (`unicode-segmentation`, the unicode-rs crate; "don't" and "3.5" stay one word) and keeps
//! words with a letter or digit; [`Tokenizer::Word`] takes runs of letters, digits and `_` (the
//! `\w+` of Python's and Lucene's classic tokenizers), so numbers from other engines can be
//! reproduced. Every term is lowercased; stop words and Snowball stemming (`rust-stemmers`, the
//! crate tantivy uses) are optional, per language.
//!
//! Invariant: the same [`Analyzer`] is applied to the indexed texts and to the queries, so a
//! query term matches exactly the stored terms it should.

use rust_stemmers::{Algorithm, Stemmer};
use unicode_segmentation::UnicodeSegmentation;

/// How a text is cut into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tokenizer {
    /// Unicode word boundaries (UAX #29); words without a letter or digit are dropped.
    #[default]
    Unicode,
    /// Runs of letters, digits and `_`.
    Word,
}

/// Languages with a stemmer and a stop-word list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// English (Porter 2 stemmer).
    English,
    /// German.
    German,
    /// French.
    French,
    /// Spanish.
    Spanish,
}

impl Language {
    fn algorithm(self) -> Algorithm {
        match self {
            Language::English => Algorithm::English,
            Language::German => Algorithm::German,
            Language::French => Algorithm::French,
            Language::Spanish => Algorithm::Spanish,
        }
    }

    /// The stop words of the language (lowercase): short, frequent words that carry little
    /// meaning for retrieval.
    pub fn stop_words(self) -> &'static [&'static str] {
        match self {
            Language::English => &[
                "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into",
                "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then",
                "there", "these", "they", "this", "to", "was", "will", "with",
            ],
            Language::German => &[
                "der", "die", "das", "und", "ist", "in", "den", "von", "zu", "mit", "sich", "des",
                "auf", "für", "nicht", "ein", "eine", "als", "auch", "es", "an", "dem", "im",
            ],
            Language::French => &[
                "le", "la", "les", "de", "des", "du", "un", "une", "et", "est", "en", "que", "qui",
                "dans", "pour", "pas", "sur", "au", "aux", "il", "elle", "ce", "se",
            ],
            Language::Spanish => &[
                "el", "la", "los", "las", "de", "del", "y", "en", "un", "una", "que", "es", "por",
                "con", "para", "no", "se", "al", "lo", "su",
            ],
        }
    }
}

/// A text analyzer: tokenizer, lowercasing, optional stop words and stemming.
#[derive(Clone)]
pub struct Analyzer {
    tokenizer: Tokenizer,
    stop_words: &'static [&'static str],
    stemmer: Option<(Language, std::sync::Arc<Stemmer>)>,
}

impl std::fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyzer")
            .field("tokenizer", &self.tokenizer)
            .field("stop_words", &self.stop_words.len())
            .field("stemmer", &self.stemmer.as_ref().map(|s| s.0))
            .finish()
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Analyzer::new(Tokenizer::Unicode)
    }
}

impl Analyzer {
    /// Lowercased words of `tokenizer`, nothing removed or stemmed.
    pub fn new(tokenizer: Tokenizer) -> Self {
        Analyzer {
            tokenizer,
            stop_words: &[],
            stemmer: None,
        }
    }

    /// Also drops `language`'s stop words.
    pub fn with_stop_words(mut self, language: Language) -> Self {
        self.stop_words = language.stop_words();
        self
    }

    /// Also reduces words to their Snowball stem in `language`.
    pub fn with_stemming(mut self, language: Language) -> Self {
        self.stemmer = Some((
            language,
            std::sync::Arc::new(Stemmer::create(language.algorithm())),
        ));
        self
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> Tokenizer {
        self.tokenizer
    }

    /// The terms of `text`, in order (a repeated word gives a repeated term).
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut push = |word: &str| {
            let lower = word.to_lowercase();
            if self.stop_words.contains(&lower.as_str()) {
                return;
            }
            match &self.stemmer {
                Some((_, s)) => out.push(s.stem(&lower).into_owned()),
                None => out.push(lower),
            }
        };
        match self.tokenizer {
            Tokenizer::Unicode => {
                for w in text.unicode_words() {
                    if w.chars().any(char::is_alphanumeric) {
                        push(w);
                    }
                }
            }
            Tokenizer::Word => {
                for w in text
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .filter(|w| !w.is_empty())
                {
                    push(w);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizers_lowercase_and_split_as_documented() {
        let text = "Don't panic: Python 3.11's asyncio.run() — déjà vu, foo_bar!";
        assert_eq!(
            Analyzer::new(Tokenizer::Unicode).terms(text),
            [
                "don't",
                "panic",
                "python",
                "3.11",
                "s",
                "asyncio.run",
                "déjà",
                "vu",
                "foo_bar"
            ]
        );
        assert_eq!(
            Analyzer::new(Tokenizer::Word).terms(text),
            [
                "don", "t", "panic", "python", "3", "11", "s", "asyncio", "run", "déjà", "vu",
                "foo_bar"
            ]
        );
    }

    #[test]
    fn stop_words_and_stemming_apply_per_language() {
        let a = Analyzer::new(Tokenizer::Unicode)
            .with_stop_words(Language::English)
            .with_stemming(Language::English);
        assert_eq!(
            a.terms("The runners are running to the parks"),
            ["runner", "run", "park"]
        );
        let de = Analyzer::new(Tokenizer::Unicode).with_stemming(Language::German);
        assert_eq!(de.terms("Häuser"), ["haus"]);
        assert!(a.terms("").is_empty());
        assert!(a.terms(" ... — !!").is_empty());
    }
}
