//! Collection configuration: the default vector (dimension, metric, index kind), named dense
//! and sparse vectors, and declared payload indexes.
//!
//! A config is validated when a collection is created and stored in the `collections` table as a
//! format byte followed by its JSON encoding (JSON rather than postcard because the config uses
//! tagged enums, which postcard cannot decode, and because a readable config helps operators). It never changes after creation (changes to
//! payload indexes will bump [`StoredCollection::config_version`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::error::{Error, Result, corrupted};

/// Largest accepted vector dimension.
pub const MAX_DIM: u32 = 4096;
/// Longest accepted collection name, in bytes.
pub const MAX_COLLECTION_NAME: usize = 64;

/// How vectors are compared. Scores returned by search follow the metric (see [`crate::Hit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Metric {
    /// Cosine similarity: vectors are compared by direction; zero vectors are rejected.
    Cosine,
    /// Inner (dot) product: larger is more similar.
    Dot,
    /// Euclidean distance: smaller is more similar.
    L2,
    /// Manhattan (L1) distance, the sum of absolute differences: smaller is more similar.
    Manhattan,
}

/// Which vector index serves searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum IndexKind {
    /// Exact (brute-force SIMD) search over all vectors: recall 1.0, cost linear in the size.
    Exact,
    /// An HNSW graph: approximate search, cost roughly logarithmic in the size. The default.
    Hnsw {
        /// Links per node on upper layers (layer 0 keeps `2 * m`), 2..=128. Default 16.
        #[serde(default = "default_m")]
        m: u32,
        /// Candidate list size while inserting, `m..=4096`. Default 200.
        #[serde(default = "default_ef_construction")]
        ef_construction: u32,
        /// Default candidate list size of a search (raised to `k`), 1..=65536; a request may
        /// override it. Default 64.
        #[serde(default = "default_ef")]
        ef: u32,
    },
}

fn default_m() -> u32 {
    16
}
fn default_ef_construction() -> u32 {
    200
}
fn default_ef() -> u32 {
    64
}

impl IndexKind {
    /// HNSW with the default parameters (m 16, ef_construction 200, ef 64).
    pub const fn hnsw() -> Self {
        IndexKind::Hnsw {
            m: 16,
            ef_construction: 200,
            ef: 64,
        }
    }
}

impl Default for IndexKind {
    fn default() -> Self {
        IndexKind::hnsw()
    }
}

/// How an HNSW index keeps its vectors for the walk (see `docs/quantization.md`): `f32`
/// alone, or a trained code per vector that the walk ranks by, with the best
/// `k × oversampling` candidates rescored with the `f32` originals.
///
/// JSON: `"auto"`, `"none"`, `"sq8"`, `"rq1"`, `"rq2"`, `"rq4"`. Absent from the JSON means
/// `none` (configs written before quantization existed, and stored configs whose vector is
/// not quantized); [`CollectionConfig::new`] and [`VectorConfig::dense`] start from `auto`,
/// which the engine resolves when the collection is created ([`Quantization::resolve`]).
///
/// # Example
/// ```
/// use hybridb::{IndexKind, Metric, Quantization};
/// let q = Quantization::Auto;
/// assert_eq!(q.resolve(384, Metric::Cosine, IndexKind::hnsw()), Quantization::Rq4);
/// assert_eq!(q.resolve(128, Metric::L2, IndexKind::hnsw()), Quantization::None);
/// assert_eq!(q.resolve(768, Metric::Cosine, IndexKind::Exact), Quantization::None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Quantization {
    /// `f32` vectors only. The default.
    #[default]
    None,
    /// 8 bits per dimension on a per-dimension grid trained from a sample.
    Sq8,
    /// Rotated 1-bit codes (RaBitQ) with correction factors. Not for Manhattan.
    Rq1,
    /// Rotated 2-bit codes. Not for Manhattan.
    Rq2,
    /// Rotated 4-bit codes. Not for Manhattan.
    Rq4,
    /// Let the engine choose when the collection is created or the setting changed:
    /// [`Quantization::Rq4`] for an HNSW-indexed vector of at least
    /// [`AUTO_QUANTIZATION_MIN_DIM`] dimensions under cosine, dot or L2, else
    /// [`Quantization::None`] (`docs/quantization.md`, "Defaults"). Never stored: a
    /// collection's config holds what was chosen.
    Auto,
}

/// The smallest dimension [`Quantization::Auto`] quantizes: from here on `rq4` with the
/// default oversampling was 1.7-2.4x faster than `f32` at the same recall and a quarter of
/// its resident memory on the data sets measured (`docs/quantization.md`); below, the graph
/// outweighs the vectors and the codes bought 1.0-1.2x.
pub const AUTO_QUANTIZATION_MIN_DIM: u32 = 384;

impl Quantization {
    /// Whether this is [`Quantization::None`].
    pub fn is_none(&self) -> bool {
        *self == Quantization::None
    }

    /// Bits per dimension of a rotated code (`None` for `none`, `sq8` and `auto`).
    pub fn rq_bits(self) -> Option<usize> {
        match self {
            Quantization::Rq1 => Some(1),
            Quantization::Rq2 => Some(2),
            Quantization::Rq4 => Some(4),
            Quantization::None | Quantization::Sq8 | Quantization::Auto => None,
        }
    }

    /// The setting a dense vector of `dim`, `metric` and `index` gets: [`Quantization::Auto`]
    /// resolved (see there), any other value unchanged.
    pub fn resolve(self, dim: u32, metric: Metric, index: IndexKind) -> Quantization {
        if self != Quantization::Auto {
            return self;
        }
        let hnsw = matches!(index, IndexKind::Hnsw { .. });
        if hnsw && dim >= AUTO_QUANTIZATION_MIN_DIM && metric != Metric::Manhattan {
            Quantization::Rq4
        } else {
            Quantization::None
        }
    }

    /// `"auto"`, `"none"`, `"sq8"`, `"rq1"`, `"rq2"` or `"rq4"`.
    pub fn name(self) -> &'static str {
        match self {
            Quantization::Auto => "auto",
            Quantization::None => "none",
            Quantization::Sq8 => "sq8",
            Quantization::Rq1 => "rq1",
            Quantization::Rq2 => "rq2",
            Quantization::Rq4 => "rq4",
        }
    }
}

/// Type of a declared payload index (maintained by a later release; stored now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PayloadIndexKind {
    /// Exact string values.
    Keyword,
    /// 64-bit signed integers.
    Integer,
    /// 64-bit floats.
    Float,
    /// Booleans.
    Bool,
    /// RFC 3339 timestamps.
    Datetime,
}

/// A named vector of a collection: dense (its own dimension, metric and index) or sparse.
///
/// Encoded in JSON as `{"type": "dense", "dim": 384, "metric": "cosine", "index": {...}}` or
/// `{"type": "sparse", "idf": true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum VectorConfig {
    /// A dense `f32` vector.
    Dense {
        /// Dimension, 1..=4096.
        dim: u32,
        /// Similarity metric.
        metric: Metric,
        /// Index kind (default HNSW).
        #[serde(default)]
        index: IndexKind,
        /// Codes the HNSW walk ranks by: `none` when absent from the JSON (and left out of it
        /// when none, so configs without quantization encode as before); `auto` from
        /// [`VectorConfig::dense`], resolved when the collection is created.
        #[serde(default, skip_serializing_if = "Quantization::is_none")]
        quantization: Quantization,
    },
    /// A sparse vector (`indices` and `values`), scored by dot product.
    Sparse {
        /// Weigh each query dimension by its inverse document frequency in the collection
        /// (Qdrant's `idf` modifier: `ln((N - n + 0.5) / (n + 0.5) + 1)`).
        #[serde(default)]
        idf: bool,
    },
}

impl VectorConfig {
    /// A dense vector with the default HNSW index and [`Quantization::Auto`].
    pub fn dense(dim: u32, metric: Metric) -> Self {
        VectorConfig::Dense {
            dim,
            metric,
            index: IndexKind::default(),
            quantization: Quantization::Auto,
        }
    }

    /// A dense vector with the given index kind and [`Quantization::Auto`].
    pub fn dense_with_index(dim: u32, metric: Metric, index: IndexKind) -> Self {
        VectorConfig::Dense {
            dim,
            metric,
            index,
            quantization: Quantization::Auto,
        }
    }

    /// A dense vector with the given index kind and quantization.
    pub fn dense_quantized(
        dim: u32,
        metric: Metric,
        index: IndexKind,
        quantization: Quantization,
    ) -> Self {
        VectorConfig::Dense {
            dim,
            metric,
            index,
            quantization,
        }
    }

    /// This declaration with [`Quantization::Auto`] resolved for its dimension, metric and
    /// index ([`Quantization::resolve`]): what declaring it stores.
    pub fn resolved(self) -> Self {
        match self {
            VectorConfig::Dense {
                dim,
                metric,
                index,
                quantization,
            } => VectorConfig::Dense {
                dim,
                metric,
                index,
                quantization: quantization.resolve(dim, metric, index),
            },
            sparse @ VectorConfig::Sparse { .. } => sparse,
        }
    }

    /// A sparse vector; `idf` turns on the IDF modifier.
    pub fn sparse(idf: bool) -> Self {
        VectorConfig::Sparse { idf }
    }

    /// `"dense"` or `"sparse"`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            VectorConfig::Dense { .. } => "dense",
            VectorConfig::Sparse { .. } => "sparse",
        }
    }

    fn validate(&self, name: &str) -> Result<()> {
        if let VectorConfig::Dense {
            dim,
            metric,
            index,
            quantization,
        } = self
        {
            validate_dense(*dim, *metric, *index, *quantization).map_err(|e| match e {
                Error::InvalidConfig(m) => Error::InvalidConfig(format!("vector {name:?}: {m}")),
                other => other,
            })?;
        }
        Ok(())
    }
}

/// A language for text analysis (stop words and Snowball stemming).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TextLanguage {
    /// English.
    English,
    /// German.
    German,
    /// French.
    French,
    /// Spanish.
    Spanish,
}

/// How a text is split into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TextTokenizer {
    /// Unicode (UAX #29) word boundaries; "don't" and "3.5" stay one word. The default.
    #[default]
    Unicode,
    /// Runs of letters, digits and `_` (the `\w+` of classic tokenizers).
    Word,
}

/// A BM25 text index on a payload field (a string, or an array of strings).
///
/// JSON: `{"language": "english", "stemming": true, "stop_words": true, "tokenizer":
/// "unicode", "k1": 1.2, "b": 0.75}` (every field optional).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TextIndexConfig {
    /// The language of stop words and stemming (`None`: neither).
    #[serde(default)]
    pub language: Option<TextLanguage>,
    /// Stem words (needs a language). Default true.
    #[serde(default = "yes")]
    pub stemming: bool,
    /// Drop stop words (needs a language). Default true.
    #[serde(default = "yes")]
    pub stop_words: bool,
    /// The tokenizer.
    #[serde(default)]
    pub tokenizer: TextTokenizer,
    /// BM25 term-frequency saturation, > 0. Default 1.2.
    #[serde(default = "default_k1")]
    pub k1: f32,
    /// BM25 length normalisation, 0..=1. Default 0.75.
    #[serde(default = "default_b")]
    pub b: f32,
}

fn yes() -> bool {
    true
}
fn default_k1() -> f32 {
    1.2
}
fn default_b() -> f32 {
    0.75
}

impl Default for TextIndexConfig {
    fn default() -> Self {
        TextIndexConfig {
            language: None,
            stemming: true,
            stop_words: true,
            tokenizer: TextTokenizer::Unicode,
            k1: 1.2,
            b: 0.75,
        }
    }
}

impl TextIndexConfig {
    /// English stop words and stemming, BM25 defaults.
    pub fn english() -> Self {
        TextIndexConfig {
            language: Some(TextLanguage::English),
            ..TextIndexConfig::default()
        }
    }

    pub(crate) fn validate(&self, field: &str) -> Result<()> {
        validate_field_key(field)?;
        if !(self.k1.is_finite() && self.k1 > 0.0) {
            return Err(Error::InvalidConfig(format!(
                "text index {field:?}: k1 {} must be a finite number > 0",
                self.k1
            )));
        }
        if !(0.0..=1.0).contains(&self.b) {
            return Err(Error::InvalidConfig(format!(
                "text index {field:?}: b {} is outside 0..=1",
                self.b
            )));
        }
        Ok(())
    }
}

/// Longest accepted vector name, in bytes.
pub const MAX_VECTOR_NAME: usize = 128;

/// Checks a named vector's name: 1..=128 bytes, no control characters. (The empty name is the
/// default vector, configured by [`CollectionConfig::dim`] and friends.)
pub(crate) fn validate_vector_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_VECTOR_NAME || name.chars().any(char::is_control) {
        return Err(Error::InvalidConfig(format!(
            "vector name {:?} must be 1..={MAX_VECTOR_NAME} bytes without control characters \
             (the default vector has no name: it is configured by `dim`, `metric` and `index`)",
            name.chars().take(80).collect::<String>()
        )));
    }
    Ok(())
}

fn validate_dense(
    dim: u32,
    metric: Metric,
    index: IndexKind,
    quantization: Quantization,
) -> Result<()> {
    if dim == 0 || dim > MAX_DIM {
        return Err(Error::InvalidConfig(format!(
            "dimension {dim} is outside 1..={MAX_DIM}"
        )));
    }
    // `auto` resolves to a setting these checks accept.
    if !quantization.is_none() && quantization != Quantization::Auto {
        if index == IndexKind::Exact {
            return Err(Error::InvalidConfig(format!(
                "quantization {} needs an hnsw index (an exact index keeps f32 vectors only)",
                quantization.name()
            )));
        }
        if metric == Metric::Manhattan && quantization.rq_bits().is_some() {
            return Err(Error::InvalidConfig(format!(
                "quantization {} has no estimator for the manhattan metric (a rotation does not \
                 keep L1 distances); use sq8 or none",
                quantization.name()
            )));
        }
    }
    if let IndexKind::Hnsw {
        m,
        ef_construction,
        ef,
    } = index
    {
        if !(2..=128).contains(&m) {
            return Err(Error::InvalidConfig(format!(
                "hnsw m {m} is outside 2..=128"
            )));
        }
        if ef_construction < m || ef_construction > 4096 {
            return Err(Error::InvalidConfig(format!(
                "hnsw ef_construction {ef_construction} is outside m..=4096"
            )));
        }
        if ef == 0 || ef > 65_536 {
            return Err(Error::InvalidConfig(format!(
                "hnsw ef {ef} is outside 1..=65536"
            )));
        }
    }
    Ok(())
}

/// The configuration of a collection.
///
/// The default vector (no name) has `dim`, `metric` and `index`; every entity must carry it,
/// except in a collection with `dim` 0, which has no default vector and only named ones.
/// Named vectors (`vectors`) are optional per entity: a search over one sees only the entities
/// that have it.
///
/// # Example
/// ```
/// use hybridb::{CollectionConfig, Metric, PayloadIndexKind};
/// let config = CollectionConfig::new(384, Metric::Cosine)
///     .with_payload_index("lang", PayloadIndexKind::Keyword);
/// assert_eq!(config.dim, 384);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// Dimension of the default vector, 1..=4096; 0 for a collection without a default vector
    /// (it must then declare at least one named vector).
    pub dim: u32,
    /// Similarity metric.
    pub metric: Metric,
    /// Vector index kind.
    pub index: IndexKind,
    /// Codes the default vector's HNSW walk ranks by: [`Quantization::Auto`] from
    /// [`CollectionConfig::new`], resolved when the collection is created; `none` when absent
    /// from the JSON (left out when none, and in files written before quantization existed).
    #[serde(default, skip_serializing_if = "Quantization::is_none")]
    pub quantization: Quantization,
    /// Declared payload indexes: field name to value type.
    pub payload_indexes: BTreeMap<String, PayloadIndexKind>,
    /// Named vectors (dense or sparse), by name. Absent from the JSON of files written before
    /// named vectors existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vectors: BTreeMap<String, VectorConfig>,
    /// BM25 text indexes on payload fields, by field key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub text_indexes: BTreeMap<String, TextIndexConfig>,
    /// The user's metadata of the collection: any JSON object (owner, embedding model,
    /// labels), kept with the config and never read by hybridb; at most
    /// [`MAX_METADATA_BYTES`] as JSON. Changed online by
    /// [`crate::Collection::update_metadata`].
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// Largest collection metadata, in bytes of JSON.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Checks the size of collection metadata.
pub(crate) fn validate_metadata(m: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    let bytes = serde_json::to_vec(m).map_or(usize::MAX, |v| v.len());
    if bytes > MAX_METADATA_BYTES {
        return Err(Error::InvalidConfig(format!(
            "collection metadata of {bytes} bytes is above the limit of {MAX_METADATA_BYTES}"
        )));
    }
    Ok(())
}

impl CollectionConfig {
    /// A config with the given dimension and metric, the default HNSW index,
    /// [`Quantization::Auto`], no payload indexes.
    pub fn new(dim: u32, metric: Metric) -> Self {
        CollectionConfig {
            dim,
            metric,
            index: IndexKind::default(),
            quantization: Quantization::Auto,
            payload_indexes: BTreeMap::new(),
            vectors: BTreeMap::new(),
            text_indexes: BTreeMap::new(),
            metadata: serde_json::Map::new(),
        }
    }

    /// A config without a default vector: entities carry only the named vectors declared with
    /// [`CollectionConfig::with_vector`] (at least one is required).
    pub fn named_only() -> Self {
        CollectionConfig {
            dim: 0,
            metric: Metric::Cosine,
            index: IndexKind::default(),
            quantization: Quantization::None,
            payload_indexes: BTreeMap::new(),
            vectors: BTreeMap::new(),
            text_indexes: BTreeMap::new(),
            metadata: serde_json::Map::new(),
        }
    }

    /// Sets the collection's metadata (see [`CollectionConfig::metadata`]).
    pub fn with_metadata(mut self, metadata: serde_json::Map<String, serde_json::Value>) -> Self {
        self.metadata = metadata;
        self
    }

    /// Declares a BM25 text index on the payload field `field`.
    pub fn with_text_index(mut self, field: impl Into<String>, config: TextIndexConfig) -> Self {
        self.text_indexes.insert(field.into(), config);
        self
    }

    /// Declares the named vector `name`.
    pub fn with_vector(mut self, name: impl Into<String>, vector: VectorConfig) -> Self {
        self.vectors.insert(name.into(), vector);
        self
    }

    /// Whether the collection has a default (unnamed) vector.
    pub fn has_default_vector(&self) -> bool {
        self.dim != 0
    }

    /// Sets the index kind.
    pub fn with_index(mut self, index: IndexKind) -> Self {
        self.index = index;
        self
    }

    /// Sets the quantization of the default vector.
    pub fn with_quantization(mut self, quantization: Quantization) -> Self {
        self.quantization = quantization;
        self
    }

    /// Declares a payload index on `field`.
    pub fn with_payload_index(mut self, field: impl Into<String>, kind: PayloadIndexKind) -> Self {
        self.payload_indexes.insert(field.into(), kind);
        self
    }

    /// This config with every [`Quantization::Auto`] resolved ([`Quantization::resolve`]):
    /// what creating the collection stores. A config without a default vector gets `none`
    /// for it.
    pub fn resolved(mut self) -> Self {
        self.quantization = if self.has_default_vector() {
            self.quantization.resolve(self.dim, self.metric, self.index)
        } else {
            Quantization::None
        };
        for vector in self.vectors.values_mut() {
            *vector = vector.resolved();
        }
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.dim == 0 {
            if self.vectors.is_empty() {
                return Err(Error::InvalidConfig(
                    "dimension 0 (no default vector) needs at least one named vector".into(),
                ));
            }
        } else {
            validate_dense(self.dim, self.metric, self.index, self.quantization)?;
        }
        for (name, vector) in &self.vectors {
            validate_vector_name(name)?;
            vector.validate(name)?;
        }
        for field in self.payload_indexes.keys() {
            validate_field_key(field)?;
        }
        for (field, text) in &self.text_indexes {
            text.validate(field)?;
        }
        validate_metadata(&self.metadata)
    }
}

/// Checks a payload index field key: 1..=256 bytes of non-empty dot-separated parts.
pub(crate) fn validate_field_key(field: &str) -> Result<()> {
    if field.is_empty() || field.len() > 256 || field.split('.').any(str::is_empty) {
        return Err(Error::InvalidConfig(format!(
            "payload index field {field:?} must be 1..=256 bytes of non-empty dot-separated parts"
        )));
    }
    Ok(())
}

/// Checks a collection name: 1..=64 bytes of `[A-Za-z0-9_-]`, not starting with `-`.
pub(crate) fn validate_collection_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_COLLECTION_NAME {
        Some("must be at most 64 bytes")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Some("may hold only ASCII letters, digits, '_' and '-'")
    } else if name.starts_with('-') {
        Some("must not start with '-'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidCollectionName {
            name: name.chars().take(80).collect(),
            reason,
        }),
        None => Ok(()),
    }
}

/// What the `collections` table stores per collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredCollection {
    /// Internal id; names the collection's tables, never reused.
    pub cid: u64,
    /// Bumped whenever the config changes.
    pub config_version: u64,
    /// Creation time, ms since the Unix epoch.
    pub created_at: u64,
    /// The configuration.
    pub config: CollectionConfig,
    /// Internal id of each named vector (names its tables, never reused in this collection).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vector_ids: BTreeMap<String, u32>,
    /// Internal id of each text index, by field (names its tables; from the same counter as
    /// named vectors, never reused).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub text_ids: BTreeMap<String, u32>,
    /// The last id assigned to a named vector or a text index (0: none yet).
    #[serde(default)]
    pub last_vid: u32,
}

const STORED_COLLECTION_FORMAT: u8 = 1;

impl StoredCollection {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = vec![STORED_COLLECTION_FORMAT];
        // Serialising plain structs with string keys cannot fail.
        out.extend(serde_json::to_vec(self).unwrap_or_default());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        match bytes.split_first() {
            Some((&STORED_COLLECTION_FORMAT, rest)) => serde_json::from_slice(rest)
                .map_err(|e| corrupted(format!("collection config: {e}"))),
            Some((v, _)) => Err(corrupted(format!("collection config format {v}"))),
            None => Err(corrupted("empty collection config")),
        }
    }
}

#[cfg(test)]
mod tests;
