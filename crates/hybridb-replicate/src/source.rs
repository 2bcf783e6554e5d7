//! The source: a hybridb server's HTTP API, read with the server's API key. Only read routes
//! are used (`/stats`, `/collections`, `/changes`, `/collections/{name}/scroll`,
//! `/collections/{name}/entities/get`), so a read-only key is enough.
//!
//! The calls block (ureq); the sink runs them on tokio's blocking pool.
//!
//! Pages of entities are asked for with `"vector_format": "base64"` (each default vector as
//! its little-endian `f32` bytes): the server neither formats nor the sink parses 384
//! decimal numbers per entity, and the values are exact. A server from before that option
//! refuses the field (`invalid_body` naming it); the source then asks for numbers from there
//! on. Either form is read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::error::{Error, Result};

/// One change event as `/changes` gives it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FeedEvent {
    /// Sequence number (gap-free, increasing).
    pub seq: u64,
    /// Collection name at the time of the event.
    pub collection: String,
    /// The entity, or `None` for collection events.
    pub id: Option<Uuid>,
    /// What happened.
    pub kind: EventKind,
    /// The entity's version after the write (its last version for `deleted`).
    pub version: u64,
    /// Commit time, milliseconds since the Unix epoch.
    pub timestamp: u64,
}

/// The kinds of change event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A new entity.
    EntityCreated,
    /// An entity's vector (and maybe payload) changed.
    VectorUpdated,
    /// An entity was rewritten with the same vector.
    StateModified,
    /// An entity was deleted.
    Deleted,
    /// A collection was created.
    CollectionCreated,
    /// A collection was dropped with its entities.
    CollectionDropped,
    /// A kind this sink does not know (a newer server): an entity event makes the sink read
    /// the entity's current state; a collection event makes it re-read the collection.
    #[serde(other)]
    Other,
}

/// What the target needs of a collection's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionSpec {
    /// Collection name.
    pub name: String,
    /// Vector dimension.
    pub dim: u32,
    /// `cosine`, `dot` or `l2`.
    pub metric: hybridb::Metric,
    /// Declared payload indexes: field → kind (`keyword`, `integer`, `float`, `bool`,
    /// `datetime`).
    pub payload_indexes: Vec<(String, String)>,
    /// Entities when read (for progress reports).
    pub count: Option<u64>,
}

/// The payload indexes declared in `v`, a JSON object of field → kind (as the server's
/// collection config and the target's collections table write them), sorted by field.
pub(crate) fn payload_indexes_of(v: Option<&Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// An entity's state as read from the source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EntityState {
    /// Id.
    pub id: Uuid,
    /// Payload object.
    pub payload: Map<String, Value>,
    /// Vector (read from an array of numbers or from base64 of little-endian `f32`s).
    #[serde(default, deserialize_with = "dense_vector")]
    pub vector: Option<Vec<f32>>,
    /// Named vectors (dense arrays or sparse `{indices, values}`), when the entity has any.
    #[serde(default)]
    pub vectors: Option<Map<String, Value>>,
    /// Version (+1 per write).
    pub version: u64,
    /// Last write, milliseconds since the Unix epoch.
    pub updated_at: u64,
}

/// The `f32`s of standard base64 (with padding) of little-endian bytes.
pub fn f32s_of_base64(text: &str) -> std::result::Result<Vec<f32>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("a base64 vector: {e}"))?;
    if bytes.len() % 4 != 0 {
        return Err(format!(
            "a base64 vector of {} bytes, not a multiple of 4",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// Reads a default vector given as an array of numbers or as a base64 string.
fn dense_vector<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Vec<f32>>, D::Error> {
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = Option<Vec<f32>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of numbers, a base64 string or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(
            self,
            d: D2,
        ) -> std::result::Result<Self::Value, D2::Error> {
            d.deserialize_any(self)
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
            f32s_of_base64(v).map(Some).map_err(E::custom)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
            while let Some(x) = seq.next_element::<f32>()? {
                out.push(x);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_option(Visit)
}

/// A page of a scroll in id order.
#[derive(Debug, Clone, Deserialize)]
pub struct ScrollPage {
    /// The entities.
    pub entities: Vec<EntityState>,
    /// Pass as `after` for the next page; `None` at the end.
    pub next: Option<Uuid>,
}

/// A hybridb server's read API.
#[derive(Clone)]
pub struct HttpSource {
    base: String,
    key: Option<String>,
    agent: ureq::Agent,
    /// Whether to ask for base64 vectors (false once the server refused the option).
    compact: Arc<AtomicBool>,
}

impl std::fmt::Debug for HttpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSource")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Largest answer read (a scroll page of 10,000 high-dimensional vectors fits).
const MAX_BODY: u64 = 1 << 30;

impl HttpSource {
    /// A source at `base` (`http://127.0.0.1:7411`), sending `key` as a bearer token when given.
    pub fn new(base: &str, key: Option<String>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        HttpSource {
            base: base.trim_end_matches('/').to_string(),
            key: key.filter(|k| !k.is_empty()),
            agent,
            compact: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Asks for vectors as JSON numbers instead of base64 (for servers from before
    /// `vector_format`; found out by itself otherwise, see the module docs).
    pub fn with_float_vectors(self) -> Self {
        self.compact.store(false, Ordering::Relaxed);
        self
    }

    /// A POST of `body` with `"vector_format": "base64"` added while the server takes it;
    /// a server that refuses the field is asked again without it, and from then on.
    fn call_vectors<T: serde::de::DeserializeOwned>(&self, path: &str, body: Value) -> Result<T> {
        if self.compact.load(Ordering::Relaxed) {
            let mut compact = body.clone();
            if let Some(m) = compact.as_object_mut() {
                m.insert("vector_format".into(), Value::from("base64"));
            }
            match self.call("POST", path, Some(&compact)) {
                Err(Error::Source {
                    status: 400,
                    code,
                    message,
                    ..
                }) if code == "invalid_body" && message.contains("vector_format") => {
                    tracing::info!(server = %self.base, "the server has no `vector_format`: reading vectors as numbers");
                    self.compact.store(false, Ordering::Relaxed);
                }
                other => return other,
            }
        }
        self.call("POST", path, Some(&body))
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request and reads the answer as `T` straight from its text (the change and
    /// scroll pages carry thousands of vectors: no `Value` tree in between); an error answer
    /// becomes [`Error::Source`].
    fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T> {
        let url = format!("{}{}", self.base, path);
        let unreachable = |e: ureq::Error| Error::SourceUnreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let auth = self.key.as_ref().map(|k| format!("Bearer {k}"));
        let response = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            (_, body) => {
                let mut r = self
                    .agent
                    .post(&url)
                    .header("Content-Type", "application/json");
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                let bytes = serde_json::to_vec(body.unwrap_or(&Value::Null)).unwrap_or_default();
                r.send(&bytes[..])
            }
        };
        let mut response = response.map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| Error::SourceUnreachable {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        let protocol = |e: serde_json::Error| Error::SourceProtocol {
            url: url.clone(),
            reason: format!("HTTP {status}: {e}"),
        };
        if status >= 400 {
            let value: Value = serde_json::from_str(&text).map_err(protocol)?;
            let err = value.get("error");
            let field = |k: &str| {
                err.and_then(|e| e.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            return Err(Error::Source {
                url,
                status,
                code: field("code"),
                message: field("message"),
            });
        }
        serde_json::from_str(&text).map_err(protocol)
    }

    /// The last committed sequence number (`GET /stats`).
    pub fn last_seq(&self) -> Result<u64> {
        #[derive(Deserialize)]
        struct Stats {
            last_seq: u64,
        }
        Ok(self.call::<Stats>("GET", "/stats", None)?.last_seq)
    }

    /// Up to `limit` change events after `since`, in order. Retention having removed some of
    /// them gives [`Error::FeedPruned`].
    pub fn changes(&self, since: u64, limit: usize) -> Result<Vec<FeedEvent>> {
        #[derive(Deserialize)]
        struct Page {
            events: Vec<FeedEvent>,
        }
        let path = format!("/changes?since={since}&limit={limit}");
        match self.call::<Page>("GET", &path, None) {
            Ok(page) => Ok(page.events),
            Err(Error::Source { status: 410, .. }) => Err(Error::FeedPruned { applied: since }),
            Err(e) => Err(e),
        }
    }

    /// The names of all collections.
    pub fn collections(&self) -> Result<Vec<String>> {
        let v: Value = self.call("GET", "/collections", None)?;
        let list = v
            .get("collections")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::SourceProtocol {
                url: format!("{}/collections", self.base),
                reason: "no `collections` array".into(),
            })?;
        Ok(list
            .iter()
            .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
            .collect())
    }

    /// A collection's configuration, or `None` if it does not exist (any more).
    pub fn collection(&self, name: &str) -> Result<Option<CollectionSpec>> {
        let path = format!("/collections/{name}");
        let v: Value = match self.call("GET", &path, None) {
            Ok(v) => v,
            Err(Error::Source { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let bad = |reason: &str| Error::UnsupportedCollection {
            collection: name.to_string(),
            reason: reason.to_string(),
        };
        let config = v
            .get("config")
            .ok_or_else(|| bad("no `config` in the answer"))?;
        let dim = config
            .get("dim")
            .and_then(Value::as_u64)
            .and_then(|d| u32::try_from(d).ok())
            .ok_or_else(|| bad("no default dense vector (`config.dim`)"))?;
        let metric = match config.get("metric").and_then(Value::as_str) {
            Some("cosine") => hybridb::Metric::Cosine,
            Some("dot") => hybridb::Metric::Dot,
            Some("l2") => hybridb::Metric::L2,
            other => return Err(bad(&format!("unknown metric {other:?}"))),
        };
        let payload_indexes = payload_indexes_of(config.get("payload_indexes"));
        Ok(Some(CollectionSpec {
            name: name.to_string(),
            dim,
            metric,
            payload_indexes,
            count: v.get("count").and_then(Value::as_u64),
        }))
    }

    /// A page of `collection` in id order after `after`, with vectors, or `None` if the
    /// collection does not exist (any more).
    pub fn scroll(
        &self,
        collection: &str,
        after: Option<Uuid>,
        limit: usize,
    ) -> Result<Option<ScrollPage>> {
        let path = format!("/collections/{collection}/scroll");
        let body = json!({"after": after, "limit": limit, "with_vector": true});
        match self.call_vectors(&path, body) {
            Ok(page) => Ok(Some(page)),
            Err(Error::Source { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The current state of each id, in the order asked (`None`: absent now), read from one
    /// snapshot; `None` for the whole call if the collection does not exist (any more).
    pub fn get_many(
        &self,
        collection: &str,
        ids: &[Uuid],
    ) -> Result<Option<Vec<Option<EntityState>>>> {
        #[derive(Deserialize)]
        struct Many {
            entities: Vec<Option<EntityState>>,
        }
        let path = format!("/collections/{collection}/entities/get");
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(4096) {
            let body = json!({"ids": chunk, "with_vector": true});
            match self.call_vectors::<Many>(&path, body) {
                Ok(many) => out.extend(many.entities),
                Err(Error::Source { status: 404, .. }) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(vector: Value) -> std::result::Result<EntityState, serde_json::Error> {
        serde_json::from_value(json!({
            "id": "c4108535-e20b-5666-81f8-37e469cb4074", "payload": {}, "version": 1,
            "updated_at": 0, "vector": vector
        }))
    }

    #[test]
    fn vectors_read_from_numbers_or_base64_alike() {
        let v = [0.25f32, -1.5, 3.0e-7, 1.0e30];
        let numbers = state(json!(v)).unwrap().vector.unwrap();
        let mut bytes = Vec::new();
        for x in v {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let compact = state(json!(b64)).unwrap().vector.unwrap();
        assert_eq!(numbers, v);
        assert_eq!(compact, v);
        assert_eq!(state(Value::Null).unwrap().vector, None);
        let absent: EntityState = serde_json::from_value(json!({
            "id": "c4108535-e20b-5666-81f8-37e469cb4074", "payload": {}, "version": 1,
            "updated_at": 0
        }))
        .unwrap();
        assert_eq!(absent.vector, None);
    }

    #[test]
    fn a_bad_base64_vector_is_refused_with_a_reason() {
        // 3 bytes: not a whole f32.
        let e = state(json!("AAAA")).unwrap_err().to_string();
        assert!(e.contains("not a multiple of 4"), "{e}");
        let e = state(json!("not base64!")).unwrap_err().to_string();
        assert!(e.contains("base64"), "{e}");
        assert!(state(json!({"x": 1})).is_err());
    }
}
