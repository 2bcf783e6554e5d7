//! Server settings: API keys and request limits. Every field has a documented default.

use std::path::PathBuf;
use std::time::Duration;

/// Environment variable holding the read-write API key(s), comma-separated.
pub const ENV_API_KEY: &str = "HYBRIDB_API_KEY";
/// Environment variable holding the read-only API key(s), comma-separated.
pub const ENV_READ_API_KEY: &str = "HYBRIDB_READ_API_KEY";

/// API keys, sent by clients as `Authorization: Bearer KEY`.
///
/// With no key configured every request is allowed. With any key configured, a request
/// without a valid key gets 401 `unauthorized`, and a read-only key on a route that writes
/// gets 403 `forbidden`. `/healthz` and `/readyz` are always open.
#[derive(Clone, Default)]
pub struct ApiKeys {
    /// Keys allowed on every route.
    pub read_write: Vec<String>,
    /// Keys allowed on reading routes only (GETs, search, count, scroll, get-many).
    pub read_only: Vec<String>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the keys themselves.
        f.debug_struct("ApiKeys")
            .field("read_write", &self.read_write.len())
            .field("read_only", &self.read_only.len())
            .finish()
    }
}

impl ApiKeys {
    /// Keys from [`ENV_API_KEY`] and [`ENV_READ_API_KEY`] (each comma-separated; empty
    /// entries are ignored).
    pub fn from_env() -> Self {
        let read = |name: &str| -> Vec<String> {
            std::env::var(name)
                .map(|v| split_keys(&v))
                .unwrap_or_default()
        };
        ApiKeys {
            read_write: read(ENV_API_KEY),
            read_only: read(ENV_READ_API_KEY),
        }
    }

    /// True when at least one key is configured (authentication is on).
    pub fn enabled(&self) -> bool {
        !self.read_write.is_empty() || !self.read_only.is_empty()
    }
}

fn split_keys(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect()
}

/// Settings of the HTTP server.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use hybridb_server::{ApiKeys, ServerConfig};
/// let config = ServerConfig {
///     api_keys: ApiKeys { read_write: vec!["secret".into()], read_only: vec![] },
///     request_timeout: Duration::from_secs(10),
///     ..ServerConfig::default()
/// };
/// assert_eq!(config.max_body_bytes, 64 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// API keys. Default: none (every request allowed).
    pub api_keys: ApiKeys,
    /// Largest accepted request body, in bytes; larger ones get 413 `body_too_large`.
    /// Default 64 MiB.
    pub max_body_bytes: usize,
    /// Deepest accepted JSON nesting (objects and arrays) of a request body; deeper ones get
    /// 400 `json_too_deep` before decoding. Default 64.
    pub max_json_depth: usize,
    /// Time limit of one request (except `/backup`, `/verify` and the body of
    /// `/changes/stream`); past it the answer is 503 `timeout`. A write already queued still
    /// commits. Default 30 s.
    pub request_timeout: Duration,
    /// Time limit of `/backup` and `/verify`. Default 1 hour.
    pub admin_timeout: Duration,
    /// Requests handled at once; further ones wait for a slot within their time limit.
    /// Default 256.
    pub max_concurrent_requests: usize,
    /// Most searches in one `/search/batch`. Default 1,024.
    pub max_batch_searches: usize,
    /// Folder that `POST /backup` writes into (request paths are relative to it). `None`
    /// disables the route (400 `backup_disabled`). Default `None`.
    pub backup_dir: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            api_keys: ApiKeys::default(),
            max_body_bytes: 64 << 20,
            max_json_depth: 64,
            request_timeout: Duration::from_secs(30),
            admin_timeout: Duration::from_secs(3600),
            max_concurrent_requests: 256,
            max_batch_searches: 1024,
            backup_dir: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_and_debug_hides_them() {
        assert_eq!(split_keys(" a, ,b,"), vec!["a", "b"]);
        let keys = ApiKeys {
            read_write: vec!["topsecret".into()],
            read_only: vec![],
        };
        assert!(keys.enabled());
        assert!(!format!("{keys:?}").contains("topsecret"));
        assert!(!ApiKeys::default().enabled());
    }
}
