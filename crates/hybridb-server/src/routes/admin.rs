//! Operations: backup, verify, stats, health, readiness, metrics.

use std::path::{Component, Path};

use crate::reply::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use crate::api::{
    BackupBody, BackupOut, CollectionStats, HealthOut, StatsOut, VerifyBody, VerifyOut, WriterOut,
};
use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;
use crate::metrics;
use crate::state::{AppState, blocking};

/// Writes a consistent backup while writes go on.
#[utoipa::path(post, path = "/backup", tag = "admin",
    request_body = BackupBody,
    responses(
        (status = 200, body = BackupOut),
        (status = 400, description = "`backup_disabled`, `invalid_backup_path`", body = ErrorBody),
        (status = 409, description = "`backup_exists`", body = ErrorBody)))]
pub(crate) async fn backup(
    State(st): State<AppState>,
    JsonBody(body): JsonBody<BackupBody>,
) -> Result<Json<BackupOut>, ApiError> {
    let Some(dir) = st.config.backup_dir.clone() else {
        return Err(ApiError::bad_request(
            "backup_disabled",
            "this server has no backup folder configured",
        ));
    };
    let rel = Path::new(&body.path);
    let plain =
        !body.path.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(ApiError::bad_request(
            "invalid_backup_path",
            "path: must be a relative path without `..`, inside the backup folder",
        ));
    }
    let target = dir.join(rel);
    blocking(move || {
        if target.exists() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "backup_exists",
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

/// Cross-checks everything stored and derived.
#[utoipa::path(post, path = "/verify", tag = "admin",
    request_body(content = VerifyBody, description = "May be empty"),
    responses((status = 200, body = VerifyOut)))]
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

/// Database numbers.
#[utoipa::path(get, path = "/stats", tag = "admin", responses((status = 200, body = StatsOut)))]
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

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "admin", security(()),
    responses((status = 200, body = HealthOut)))]
pub(crate) async fn healthz() -> Json<HealthOut> {
    Json(HealthOut { status: "ok" })
}

/// Readiness: the database can be read and the server is not shutting down.
#[utoipa::path(get, path = "/readyz", tag = "admin", security(()),
    responses(
        (status = 200, body = HealthOut),
        (status = 503, description = "`shutting_down`, `recovering`", body = ErrorBody)))]
pub(crate) async fn readyz(State(st): State<AppState>) -> Result<Json<HealthOut>, ApiError> {
    if st.shutting_down() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        ));
    }
    blocking(move || {
        st.db.last_seq()?;
        Ok(Json(HealthOut { status: "ready" }))
    })
    .await
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "admin",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(st): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let text = blocking(move || {
        metrics::render(&st.metrics, &st.db).map_err(|reason| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "metrics_unavailable",
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

/// The OpenAPI document of this server.
pub(crate) async fn openapi(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        st.openapi_json.as_str().to_string(),
    )
}
