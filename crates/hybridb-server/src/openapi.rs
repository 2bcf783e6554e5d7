//! Completes the OpenAPI document generated from the handlers' `#[utoipa::path]` attributes
//! with what the layers every request passes add to each route.
//!
//! A handler's attribute lists the error answers of its own work (`collection_not_found`,
//! `version_conflict`, ...). The answers that come from the shared layers are derived here from
//! the operation itself, with the same rules the layers apply, so they cannot be forgotten on
//! a route: body decoding ([`crate::extract`]: 400 `invalid_json`/`invalid_body`/
//! `json_too_deep`, 413, 415, for routes with a body), path and query decoding (400), API keys
//! ([`crate::middleware::required_access`]: 401, 403, and the operation's `security`), the time
//! limit (503 `timeout`, with `Retry-After`), panics (500 `internal`) and storage faults (500).
//! Where the handler already documents a status, the codes are added to its description.
//!
//! A body that may be left out is declared `Option<T>` in the attribute, which utoipa renders
//! as "`T` or `null`"; the server takes an empty body (as `{}`) but not `null`, so it is
//! documented as an optional body of schema `T`.

use axum::http::Method;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Object, Schema, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr};

use crate::error::ErrorCode;
use crate::middleware::{Access, required_access};

/// Routes that never touch the database (no storage faults).
const WITHOUT_DATABASE: [&str; 3] = ["/healthz", "/openapi.json", "/qdrant"];

/// A group of codes a layer may answer with, and why.
struct Shared {
    codes: &'static [ErrorCode],
    why: &'static str,
}

/// Adds the layers' error answers, headers and security to every operation of `doc`.
pub(crate) fn complete(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            (Method::GET, &mut item.get),
            (Method::PUT, &mut item.put),
            (Method::POST, &mut item.post),
            (Method::DELETE, &mut item.delete),
            (Method::PATCH, &mut item.patch),
            (Method::OPTIONS, &mut item.options),
            (Method::HEAD, &mut item.head),
            (Method::TRACE, &mut item.trace),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                complete_operation(&method, path, operation);
            }
        }
    }
}

fn complete_operation(method: &Method, path: &str, op: &mut Operation) {
    let access = required_access(method, path);
    let in_parameters = |place: ParameterIn| {
        op.parameters.iter().flatten().any(|p| match p {
            RefOr::T(p) => p.parameter_in == place,
            RefOr::Ref(_) => false,
        })
    };
    let mut shared = Vec::new();
    if op.request_body.is_some() {
        shared.push(Shared {
            codes: &[
                ErrorCode::InvalidJson,
                ErrorCode::InvalidBody,
                ErrorCode::JsonTooDeep,
            ],
            why: "the body does not decode (the message names the field)",
        });
        shared.push(Shared {
            codes: &[ErrorCode::BodyTooLarge],
            why: "the body is over the size limit",
        });
        shared.push(Shared {
            codes: &[ErrorCode::UnsupportedMediaType],
            why: "the body is not sent as `Content-Type: application/json`",
        });
    }
    if in_parameters(ParameterIn::Path) {
        shared.push(Shared {
            codes: &[ErrorCode::InvalidPath],
            why: "a path parameter does not decode",
        });
    }
    if in_parameters(ParameterIn::Query) {
        shared.push(Shared {
            codes: &[ErrorCode::InvalidQueryParam],
            why: "a query parameter does not decode",
        });
    }
    if access != Access::Open {
        shared.push(Shared {
            codes: &[ErrorCode::Unauthorized],
            why: "API keys are configured and the request has no valid one",
        });
    }
    if access == Access::Write {
        shared.push(Shared {
            codes: &[ErrorCode::Forbidden],
            why: "a read-only key on a route that writes",
        });
    }
    shared.push(Shared {
        codes: &[ErrorCode::Timeout],
        why: "the request did not finish in time; retry later",
    });
    shared.push(Shared {
        codes: &[ErrorCode::Internal],
        why: "a fault of the server, nothing about the request",
    });
    if !WITHOUT_DATABASE.contains(&path) {
        shared.push(Shared {
            codes: &[
                ErrorCode::StorageError,
                ErrorCode::IoError,
                ErrorCode::Corrupted,
            ],
            why: "a storage fault",
        });
    }
    let qdrant = path
        .strip_prefix(crate::qdrant::PREFIX)
        .is_some_and(|r| r.is_empty() || r.starts_with('/'));
    for group in &shared {
        if qdrant {
            add_qdrant_errors(op, group);
        } else {
            add_codes(op, group);
        }
    }
    optional_body(op);
    for (status, response) in op.responses.responses.iter_mut() {
        if let RefOr::T(response) = response {
            add_headers(status, response);
        }
    }
    op.security = Some(match access {
        Access::Open => vec![SecurityRequirement::default()],
        Access::Read | Access::Write => vec![SecurityRequirement::new("api_key", [""; 0])],
    });
    let key = match access {
        Access::Open => "No API key needed.",
        Access::Read => "API key: read-only or read-write (when keys are configured).",
        Access::Write => "API key: read-write (when keys are configured).",
    };
    op.description = Some(match op.description.take() {
        Some(d) if !d.is_empty() => format!("{d}\n\n{key}"),
        _ => key.to_string(),
    });
}

/// Adds `group`'s codes to the response of their status, creating it if the handler did not
/// document one.
fn add_codes(op: &mut Operation, group: &Shared) {
    let status = group.codes[0].status().as_u16().to_string();
    let missing: Vec<String> = group
        .codes
        .iter()
        .map(|c| format!("`{c}`"))
        .filter(|c| match op.responses.responses.get(&status) {
            Some(RefOr::T(r)) => !r.description.contains(c.as_str()),
            _ => true,
        })
        .collect();
    if missing.is_empty() {
        return;
    }
    let text = format!("{}: {}", missing.join(", "), group.why);
    match op.responses.responses.get_mut(&status) {
        Some(RefOr::T(response)) => {
            response.description = format!("{}; {text}", response.description);
        }
        _ => {
            op.responses
                .responses
                .insert(status, RefOr::T(error_response(text)));
        }
    }
}

/// The Qdrant routes answer errors in Qdrant's form, which has no code: the layers' causes
/// are added in words, with the `QdrantError` schema.
fn add_qdrant_errors(op: &mut Operation, group: &Shared) {
    let status = group.codes[0].status().as_u16().to_string();
    match op.responses.responses.get_mut(&status) {
        Some(RefOr::T(response)) => {
            if !response.description.contains(group.why) {
                response.description = format!("{}; {}", response.description, group.why);
            }
        }
        _ => {
            op.responses.responses.insert(
                status,
                RefOr::T(error_response_of("QdrantError", group.why.to_string())),
            );
        }
    }
}

/// Turns an optional body's "`T` or `null`" schema into `T` (see the module docs).
fn optional_body(op: &mut Operation) {
    let Some(RefOr::T(body)) = op.request_body.as_mut() else {
        return;
    };
    for content in body.content.values_mut() {
        let RefOr::T(content) = content else {
            continue;
        };
        let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
            continue;
        };
        let is_null = |s: &RefOr<Schema>| matches!(s, RefOr::T(Schema::Object(o)) if o.schema_type == Type::Null.into());
        if let [a, b] = one_of.items.as_slice() {
            let other = match (is_null(a), is_null(b)) {
                (false, true) => a.clone(),
                (true, false) => b.clone(),
                _ => continue,
            };
            content.schema = Some(other);
        }
    }
}

/// An error answer: `ErrorBody` as JSON.
fn error_response(description: String) -> Response {
    error_response_of("ErrorBody", description)
}

/// An error answer with the schema `schema` as JSON.
fn error_response_of(schema: &str, description: String) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
}

/// The headers that come with 401 and 503 answers.
fn add_headers(status: &str, response: &mut Response) {
    let header = |kind: Type, description: &str| -> RefOr<Header> {
        RefOr::T(
            HeaderBuilder::new()
                .schema(Some(Object::with_type(kind)))
                .description(Some(description))
                .build(),
        )
    };
    match status {
        "401" => {
            response
                .headers
                .entry("WWW-Authenticate".to_string())
                .or_insert_with(|| {
                    header(
                        Type::String,
                        "`Bearer`: send `Authorization: Bearer KEY` (or `api-key: KEY`)",
                    )
                });
        }
        "503" => {
            response
                .headers
                .entry("Retry-After".to_string())
                .or_insert_with(|| header(Type::Integer, "Seconds to wait before retrying (1)"));
        }
        _ => {}
    }
}
