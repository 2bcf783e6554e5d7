//! Operations: backup, verify, stats, health, readiness, metrics.

use std::path::{Component, Path};

use crate::reply::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::api::{
    BackupBody, BackupOut, CollectionStats, HealthOut, StatsOut, VerifyBody, VerifyOut, WriterOut,
};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::JsonBody;
use crate::metrics;
use crate::state::{AppState, blocking};

/// Back up
///
/// Writes a consistent copy of the database into the server's backup folder while writes go
/// on. Backups never overwrite.
#[utoipa::path(post, path = "/backup", tag = "admin",
    operation_id = "backup",
    request_body = BackupBody,
    responses(
        (status = 200, description = "The backup is written", body = BackupOut),
        (status = 400, description = "`backup_disabled`, `invalid_backup_path`", body = ErrorBody),
        (status = 409, description = "`backup_exists`", body = ErrorBody)))]
pub(crate) async fn backup(
    State(st): State<AppState>,
    JsonBody(body): JsonBody<BackupBody>,
) -> Result<Json<BackupOut>, ApiError> {
    let Some(dir) = st.config.backup_dir.clone() else {
        return Err(ApiError::new(
            ErrorCode::BackupDisabled,
            "this server has no backup folder configured",
        ));
    };
    let rel = Path::new(&body.path);
    let plain =
        !body.path.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(ApiError::new(
            ErrorCode::InvalidBackupPath,
            "path: must be a relative path without `..`, inside the backup folder",
        ));
    }
    let target = dir.join(rel);
    blocking(move || {
        if target.exists() {
            return Err(ApiError::new(
                ErrorCode::BackupExists,
                format!("path: {} already exists", body.path),
            ));
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(hybridb::Error::from)?;
        }
        let info = st.db.backup(&target, |_| {})?;
        Ok(Json(BackupOut {
            path: target.display().to_string(),
            seq: info.seq,
            entities: info.entities,
            checkpoints: info.checkpoints,
        }))
    })
    .await
}

/// Verify
///
/// Cross-checks everything stored and derived (entities, vectors, slots, payload indexes,
/// the vector index); with `repair`, rebuilds the in-memory indexes first.
#[utoipa::path(post, path = "/verify", tag = "admin",
    operation_id = "verify",
    request_body(content = Option<VerifyBody>, description = "May be empty: verify without repair"),
    responses((status = 200, description = "The report; `clean` is true when nothing is wrong", body = VerifyOut)))]
pub(crate) async fn verify(
    State(st): State<AppState>,
    JsonBody(body): JsonBody<VerifyBody>,
) -> Result<Json<VerifyOut>, ApiError> {
    blocking(move || {
        let report = if body.repair {
            st.db.verify_and_repair()?
        } else {
            st.db.verify()?
        };
        Ok(Json(VerifyOut::from(report)))
    })
    .await
}

/// Stats
///
/// Database numbers: the file, the last change, writer counters, per-collection counts.
#[utoipa::path(get, path = "/stats", tag = "admin", operation_id = "stats",
    responses((status = 200, description = "The numbers", body = StatsOut)))]
pub(crate) async fn stats(State(st): State<AppState>) -> Result<Json<StatsOut>, ApiError> {
    blocking(move || {
        let w = st.db.writer_stats();
        let mut collections = Vec::new();
        for info in st.db.collections() {
            // A collection dropped meanwhile is simply left out.
            let Ok(c) = st.db.collection(&info.name) else {
                continue;
            };
            collections.push(CollectionStats {
                count: c.count().unwrap_or(0),
                indexed: c.indexed_count() as u64,
                index_memory_bytes: c.index_memory_bytes() as u64,
                unlinked: c.unlinked_count() as u64,
                name: info.name,
            });
        }
        Ok(Json(StatsOut {
            path: st.db.path().display().to_string(),
            last_seq: st.db.last_seq()?,
            writer: WriterOut {
                groups: w.groups,
                commands: w.commands,
                items: w.items,
                failed_commits: w.failed_commits,
            },
            collections,
            uptime_seconds: st.metrics.uptime().as_secs(),
        }))
    })
    .await
}

/// Liveness
///
/// The process answers (no key needed).
#[utoipa::path(get, path = "/healthz", tag = "admin", operation_id = "healthz", security(()),
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = HealthOut)))]
pub(crate) async fn healthz() -> Json<HealthOut> {
    Json(HealthOut { status: "ok" })
}

/// Readiness
///
/// The database can be read and the server is not shutting down (no key needed).
#[utoipa::path(get, path = "/readyz", tag = "admin", operation_id = "readyz", security(()),
    responses(
        (status = 200, description = "`{\"status\": \"ready\"}`", body = HealthOut),
        (status = 503, description = "`shutting_down`, `recovering`", body = ErrorBody)))]
pub(crate) async fn readyz(State(st): State<AppState>) -> Result<Json<HealthOut>, ApiError> {
    if st.shutting_down() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ));
    }
    blocking(move || {
        st.db.last_seq()?;
        Ok(Json(HealthOut { status: "ready" }))
    })
    .await
}

/// Metrics
///
/// Every series recorded through the `metrics` facade, in the Prometheus text format 0.0.4.
#[utoipa::path(get, path = "/metrics", tag = "admin", operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 503, description = "`metrics_unavailable`: another recorder was installed first", body = ErrorBody)))]
pub(crate) async fn metrics(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let text = blocking(move || {
        metrics::render(&st.metrics, &st.db).map_err(|reason| {
            ApiError::new(
                ErrorCode::MetricsUnavailable,
                format!("no metrics exporter: {reason}"),
            )
        })
    })
    .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}

/// OpenAPI document
///
/// This document: the OpenAPI 3.1 description of every route, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", tag = "admin", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub(crate) async fn openapi(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        st.openapi_json.as_str().to_string(),
    )
}
