//! # hybridb-server
//!
//! The HTTP/JSON API over a [`hybridb::Database`]: collections, entities, vector search, the
//! change feed (as pages and as server-sent events), backup, verify, stats, health, Prometheus
//! metrics and an OpenAPI document at `/openapi.json` generated from the handlers.
//!
//! - **Errors** are `{"error":{"code":"...","message":"..."}}` with a stable code and the
//!   right status ([`ApiError`]); messages name the bad field (`entities[2].vector[0]`).
//! - **Security**: optional API keys ([`ApiKeys`]), read-write and read-only, compared in
//!   constant time; a warning is logged when the server listens beyond loopback without keys.
//! - **Limits** ([`ServerConfig`]): body size, JSON depth, time per request, concurrent
//!   requests. No input makes a handler panic; a panic would answer 500.
//! - **Never blocks the runtime**: writes go through the library's async API, reads run on
//!   tokio's blocking pool.
//!
//! The route list and the error codes are in `docs/server.md` of the repository.
//!
//! ## Example
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let db = hybridb::Database::open("data.redb")?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7411").await?;
//! // Serves until the future resolves (here: never).
//! let shutdown = std::future::pending::<()>();
//! hybridb_server::serve(db, hybridb_server::ServerConfig::default(), listener, shutdown).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod api;
mod config;
mod error;
mod extract;
pub mod filter;
mod metrics;
mod middleware;
mod openapi;
pub mod qdrant;
mod reply;
mod routes;
mod state;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt;
use hybridb::Database;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

pub use api::*;
pub use config::{ApiKeys, ENV_API_KEY, ENV_READ_API_KEY, ServerConfig};
pub use error::{ApiError, ErrorBody, ErrorCode, ErrorDetail};
pub use extract::{decode_json, too_deep};
use metrics::Metrics;
use state::AppState;

/// The entity an API or import record describes: its `id`, or the id derived from its `key`
/// ([`hybridb::EntityId::from_key`]), or a fresh UUID v7 when it names neither; a missing
/// payload is an empty object; `vector` is the default vector (empty in a collection without
/// one) and `vectors` the named ones. Errors when both `id` and `key` are given.
pub fn entity_of(
    id: Option<hybridb::EntityId>,
    key: Option<String>,
    payload: Option<serde_json::Value>,
    vector: Vec<f32>,
    vectors: std::collections::BTreeMap<String, hybridb::NamedVector>,
) -> Result<hybridb::Entity, &'static str> {
    let id = match (id, key) {
        (Some(_), Some(_)) => return Err("give `id` or `key`, not both"),
        (Some(id), None) => id,
        (None, Some(key)) => hybridb::EntityId::from_key(&key),
        (None, None) => hybridb::EntityId::new_v7(),
    };
    let payload = payload.unwrap_or_else(|| serde_json::Value::Object(Default::default()));
    let mut entity = hybridb::Entity::new(id, payload, vector);
    entity.vectors = vectors;
    Ok(entity)
}

/// The OpenAPI document of the API (what `/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::split().1
}

/// A built application: the router, and the switch that starts its shutdown.
pub struct App {
    /// The axum router, with every layer.
    pub router: Router,
    /// Send `true` to end live streams and make `/readyz` answer 503.
    pub shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

/// Builds the application for `db` with `config` (no listening yet). It serves the Qdrant
/// API under `/qdrant` too; [`apps`] also builds the router of the Qdrant port.
pub fn app(db: Database, config: ServerConfig) -> App {
    let apps = apps(db, config);
    App {
        router: apps.main,
        shutdown: apps.shutdown,
    }
}

/// The routers of both ports over one shared state (one database, one set of request
/// slots, one metrics registry).
pub struct Apps {
    /// The native API (with the Qdrant API under `/qdrant`), for the main port.
    pub main: Router,
    /// The Qdrant-compatible API at the root, for the Qdrant port.
    pub qdrant: Router,
    /// Send `true` to end live streams and make `/readyz` answer 503.
    pub shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for Apps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apps").finish_non_exhaustive()
    }
}

/// Builds the routers of both ports for `db` with `config` (no listening yet).
pub fn apps(db: Database, config: ServerConfig) -> Apps {
    let (router, openapi) = routes::split();
    let openapi_json = openapi.to_json().unwrap_or_else(|_| "{}".to_string());
    let (state, shutdown) = new_state(db, config, openapi_json);
    let (qdrant, _) = qdrant::routes().split_for_parts();
    Apps {
        main: with_layers(router, state.clone(), Some(qdrant::PREFIX)),
        qdrant: with_layers(qdrant, state, None),
        shutdown,
    }
}

fn new_state(
    db: Database,
    config: ServerConfig,
    openapi_json: String,
) -> (AppState, watch::Sender<bool>) {
    let (shutdown, shutdown_rx) = watch::channel(false);
    let state = AppState {
        db,
        permits: Arc::new(Semaphore::new(config.max_concurrent_requests.max(1))),
        metrics: Arc::new(Metrics::default()),
        shutdown: shutdown_rx,
        openapi_json: Arc::new(openapi_json),
        config: Arc::new(config),
    };
    (state, shutdown)
}

/// The fallback and the layers of [`middleware`], outermost last; outside them all, the
/// rewriting of errors into Qdrant's form for the Qdrant routes (all of them, or those under
/// `qdrant_prefix`).
fn with_layers(
    router: Router<AppState>,
    state: AppState,
    qdrant_prefix: Option<&'static str>,
) -> Router {
    let scope = qdrant::envelope::Scope(qdrant_prefix);
    router
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::observe,
        ))
        .layer(axum::middleware::from_fn_with_state(
            scope,
            qdrant::envelope::translate,
        ))
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        crate::error::ErrorCode::NotFound,
        format!("no route for {}", uri.path()),
    )
}

/// The warning for a server reachable beyond this machine without API keys, if that is the
/// case of `addr` and `keys`.
pub fn exposure_warning(addr: std::net::SocketAddr, keys: &ApiKeys) -> Option<String> {
    (!addr.ip().is_loopback() && !keys.enabled()).then(|| {
        format!(
            "listening on {addr}, beyond loopback, WITHOUT API keys: anyone who can reach this \
             address can read and change the database; set {ENV_API_KEY} (and \
             {ENV_READ_API_KEY})"
        )
    })
}

/// Serves `db` on `listener` until `shutdown` resolves, then stops taking connections, ends
/// live streams and waits for the requests in flight.
///
/// Logs a warning (through `tracing`) when the listener is not on a loopback address and no
/// API key is configured.
pub async fn serve(
    db: Database,
    config: ServerConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    if let Some(warning) = exposure_warning(addr, &config.api_keys) {
        tracing::warn!(%addr, "{warning}");
    }
    let App {
        router,
        shutdown: stop,
    } = app(db, config);
    tracing::info!(%addr, "hybridb server listening");
    // Answers are small and written at once: send them without Nagle's delay.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await
}

/// Serves `db` like [`serve`] on `listener`, and the Qdrant-compatible API at the root of
/// `qdrant_listener`, over the same state, until `shutdown` resolves; then both stop taking
/// connections and wait for the requests in flight.
pub async fn serve_with_qdrant(
    db: Database,
    config: ServerConfig,
    listener: TcpListener,
    qdrant_listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let qdrant_addr = qdrant_listener.local_addr()?;
    for a in [addr, qdrant_addr] {
        if let Some(warning) = exposure_warning(a, &config.api_keys) {
            tracing::warn!(addr = %a, "{warning}");
        }
    }
    let Apps {
        main,
        qdrant,
        shutdown: stop,
    } = apps(db, config);
    tracing::info!(%addr, %qdrant_addr, "hybridb server listening (Qdrant API on the second)");
    let nodelay = |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    };
    let mut stopped = stop.subscribe();
    let qdrant_stopped = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    let main_server =
        axum::serve(listener.tap_io(nodelay), main).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        });
    let qdrant_server =
        axum::serve(qdrant_listener.tap_io(nodelay), qdrant).with_graceful_shutdown(qdrant_stopped);
    let (a, b) = tokio::join!(main_server.into_future(), qdrant_server.into_future());
    a.and(b)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    /// The real layers over a route that sleeps, and one that panics.
    fn slow_app(config: ServerConfig) -> (Router, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path().join("t.redb")).unwrap();
        let (state, _) = new_state(db, config, String::new());
        let router = Router::new()
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }),
            )
            .route(
                "/panic",
                axum::routing::get(|| async {
                    if true {
                        panic!("handler bug");
                    }
                    "never"
                }),
            );
        (with_layers(router, state, Some(qdrant::PREFIX)), dir)
    }

    async fn status_and_code(router: &Router, path: &str) -> (u16, String) {
        let r = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = r.status().as_u16();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        (
            status,
            v["error"]["code"].as_str().unwrap_or("").to_string(),
        )
    }

    #[test]
    fn warns_only_beyond_loopback_without_keys() {
        let keys = ApiKeys {
            read_write: vec!["k".into()],
            read_only: vec![],
        };
        let none = ApiKeys::default();
        let open: std::net::SocketAddr = "0.0.0.0:7411".parse().unwrap();
        let local: std::net::SocketAddr = "127.0.0.1:7411".parse().unwrap();
        let local6: std::net::SocketAddr = "[::1]:7411".parse().unwrap();
        assert!(
            exposure_warning(open, &none)
                .unwrap()
                .contains("WITHOUT API keys")
        );
        assert!(exposure_warning(open, &keys).is_none());
        assert!(exposure_warning(local, &none).is_none());
        assert!(exposure_warning(local6, &none).is_none());
    }

    #[tokio::test]
    async fn slow_requests_time_out_with_a_json_error() {
        let (router, _dir) = slow_app(ServerConfig {
            request_timeout: Duration::from_millis(50),
            ..ServerConfig::default()
        });
        assert_eq!(
            status_and_code(&router, "/slow").await,
            (503, "timeout".to_string())
        );
    }

    #[tokio::test]
    async fn a_full_server_makes_requests_wait_then_time_out() {
        let (router, _dir) = slow_app(ServerConfig {
            request_timeout: Duration::from_millis(450),
            max_concurrent_requests: 1,
            ..ServerConfig::default()
        });
        // Two at once, one slot: the first finishes (300 ms), the second waits for the slot
        // and then runs out of time (450 ms < 600 ms).
        let (a, b) = tokio::join!(
            status_and_code(&router, "/slow"),
            status_and_code(&router, "/slow")
        );
        let mut statuses = [a.0, b.0];
        statuses.sort();
        assert_eq!(statuses, [200, 503]);
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500() {
        let (router, _dir) = slow_app(ServerConfig::default());
        assert_eq!(
            status_and_code(&router, "/panic").await,
            (500, "internal".to_string())
        );
        // The server goes on.
        assert_eq!(status_and_code(&router, "/nothing").await.1, "not_found");
    }
}
