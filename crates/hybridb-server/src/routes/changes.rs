//! The change feed: a page of events since a sequence number, and a live server-sent-event
//! stream fed by [`hybridb::Database::subscribe`].
//!
//! The stream sends each event as `id: <seq>`, `event: change`, `data: <json>`; a client that
//! reconnects with `Last-Event-ID` resumes after that event (the header wins over `since`), so
//! none is lost or repeated. It
//! ends with an `event: error` (e.g. `changes_pruned`) or when the server shuts down.

use std::convert::Infallible;
use std::time::Duration;

use crate::reply::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;

use crate::api::{ChangeOut, ChangesOut, ChangesQuery, StreamQuery};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::ApiQuery;
use crate::state::{AppState, blocking};

/// Most events per page.
const MAX_LIMIT: usize = 10_000;

/// List changes
///
/// A page of change events after `since`, in order; pass `next_since` as `since` to go on.
#[utoipa::path(get, path = "/changes", tag = "changes",
    operation_id = "list_changes",
    params(ChangesQuery),
    responses(
        (status = 200, description = "A page of events", body = ChangesOut),
        (status = 400, description = "`invalid_query_param`: a bad `since` or `limit`", body = ErrorBody),
        (status = 410, description = "`changes_pruned`: events after `since` are gone", body = ErrorBody)))]
pub(crate) async fn changes(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> Result<Json<ChangesOut>, ApiError> {
    if q.limit == 0 || q.limit > MAX_LIMIT {
        return Err(ApiError::new(
            ErrorCode::InvalidQueryParam,
            format!("limit: {} is outside 1..={MAX_LIMIT}", q.limit),
        ));
    }
    blocking(move || {
        let events = st.db.changes_since(q.since, q.limit)?;
        let next_since = events.last().map_or(q.since, |e| e.seq);
        Ok(Json(ChangesOut {
            events: events.into_iter().map(ChangeOut::from).collect(),
            next_since,
        }))
    })
    .await
}

/// Stream changes
///
/// Live change events as server-sent events (`text/event-stream`): each `event: change`,
/// `id: <seq>`, `data: <event JSON>`; stored events first, then new ones as they commit.
/// The stream ends with an `event: error` whose data is an error body (e.g.
/// `changes_pruned`), or when the server shuts down.
#[utoipa::path(get, path = "/changes/stream", tag = "changes",
    operation_id = "stream_changes",
    params(StreamQuery,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event")),
    responses(
        (status = 200, description = "An endless stream of server-sent events: `event: change` with a `ChangeOut` as `data`, and at the end possibly `event: error` with an `ErrorBody`", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_query_param`", body = ErrorBody)))]
pub(crate) async fn stream(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // A reconnecting EventSource repeats its URL (with `since`) and adds Last-Event-ID:
    // the header says where it really is.
    let since = match last_event_id.or(q.since) {
        Some(s) => s,
        None => {
            let db = st.db.clone();
            blocking(move || Ok(db.last_seq()?)).await?
        }
    };
    let sub = st.db.subscribe(since);
    let shutdown = st.shutdown.clone();
    let events = futures_util::stream::unfold(
        (sub, shutdown, false),
        |(mut sub, mut shutdown, done)| async move {
            if done || *shutdown.borrow() {
                return None;
            }
            let next = tokio::select! {
                r = sub.next_event() => r,
                _ = shutdown.wait_for(|stop| *stop) => return None,
            };
            let (event, done) = match next {
                Ok(e) => {
                    let seq = e.seq;
                    let event = Event::default()
                        .event("change")
                        .id(seq.to_string())
                        .json_data(ChangeOut::from(e))
                        .unwrap_or_else(|_| Event::default().comment("unencodable event"));
                    (event, false)
                }
                Err(e) => {
                    let body = ApiError::from(e).body();
                    let event = Event::default()
                        .event("error")
                        .json_data(body)
                        .unwrap_or_else(|_| Event::default().event("error"));
                    (event, true)
                }
            };
            Some((Ok(event), (sub, shutdown, done)))
        },
    );
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
