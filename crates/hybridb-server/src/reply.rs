//! JSON answers: `application/json`, ending with a newline so that answers printed by
//! `curl` in a terminal do not run into the prompt or each other.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A JSON answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(mut bytes) => {
                bytes.push(b'\n');
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    bytes,
                )
                    .into_response()
            }
            // Our answer types always serialise; this is a bug, not bad input.
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                format!(
                    "{{\"error\":{{\"code\":\"internal\",\"message\":{}}}}}\n",
                    serde_json::Value::from(format!("could not encode the answer: {e}"))
                ),
            )
                .into_response(),
        }
    }
}
