//! Request decoding: JSON bodies, path and query parameters, each failing with an
//! [`ApiError`] that names the bad field. Nothing here panics on any input.
//!
//! A JSON body is checked in this order: content type (`application/json`, 415 otherwise;
//! an empty body may come without one),
//! size (axum's `DefaultBodyLimit`, 413), nesting depth (a byte scan before decoding, 400
//! `json_too_deep`), then decoded with `serde_path_to_error` so that type errors name their
//! path (`entities[2].vector[0]`). An empty body decodes as `{}`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// A JSON request body of type `T`, decoded as described in the module docs.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("").to_string());
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        // A body needs a JSON content type; so does an empty body sent with another type
        // (what an HTML form sends): cross-site forms cannot reach the API.
        let json_type = content_type.as_deref().map(is_json);
        if json_type == Some(false) || (!bytes.is_empty() && json_type.is_none()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with the header `Content-Type: application/json`",
            ));
        }
        decode_json(&bytes, state.config.max_json_depth).map(JsonBody)
    }
}

fn body_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::BodyTooLarge,
            "the request body exceeds the server's size limit",
        )
    } else {
        ApiError::new(
            ErrorCode::InvalidBody,
            format!("could not read the body: {e}"),
        )
    }
}

/// True for `application/json` and `application/*+json`, with any parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// True if `bytes`, read as JSON, nests objects and arrays deeper than `max`. Brackets inside
/// strings do not count. Linear, allocation-free; works on any bytes.
pub fn too_deep(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Decodes a JSON body (`{}` when empty) into `T`, with the depth check and field-naming
/// errors of the module docs.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    if too_deep(bytes, max_depth) {
        return Err(ApiError::new(
            ErrorCode::JsonTooDeep,
            format!("the body nests objects and arrays deeper than {max_depth} levels"),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let e = e.into_inner();
        // serde_json reports a value of the wrong kind for an enum (a number where a name is
        // expected) as a syntax error; if the text is well-formed JSON, it is the body's shape
        // that is wrong, at `path`.
        let well_formed = || serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok();
        if e.is_syntax() && well_formed() {
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            let code = if crate::filter::in_filter(&path) {
                ErrorCode::InvalidFilter
            } else {
                ErrorCode::InvalidBody
            };
            return ApiError::new(code, format!("{path}: a value of the wrong kind ({msg})"));
        }
        json_error(e, &path)
    })?;
    de.end().map_err(|e| json_error(e, "."))?;
    Ok(value)
}

fn json_error(e: serde_json::Error, path: &str) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let msg = e.to_string();
            // serde_json appends " at line L column C"; the path says more.
            let msg = msg.split(" at line ").next().unwrap_or(&msg);
            if crate::filter::in_filter(path) {
                ApiError::new(ErrorCode::InvalidFilter, format!("{path}: {msg}"))
            } else if path == "." {
                ApiError::new(ErrorCode::InvalidBody, msg.to_string())
            } else {
                ApiError::new(ErrorCode::InvalidBody, format!("{path}: {msg}"))
            }
        }
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::new(ErrorCode::InvalidJson, format!("malformed JSON: {e}"))
        }
    }
}

/// Path parameters of type `T`; a bad one gives 400 `invalid_path`.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.body_text()))
    }
}

/// Query-string parameters of type `T`; a bad one gives 400 `invalid_query_param`.
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::new(ErrorCode::InvalidQueryParam, e.body_text()))
    }
}

/// Parses an entity id from a path segment.
pub(crate) fn parse_id(s: &str) -> Result<hybridb::EntityId, ApiError> {
    s.parse().map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        entities: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        vector: Vec<f32>,
    }

    #[test]
    fn depth() {
        assert!(!too_deep(b"[[[]]]", 3));
        assert!(too_deep(b"[[[[]]]]", 3));
        assert!(!too_deep(br#"["[[[[[[", {"a":"\"[[[["}]"#, 2));
        assert!(too_deep(&[b'['; 100], 64));
    }

    #[test]
    fn errors_name_the_field() {
        let e = decode_json::<Body>(br#"{"entities":[{"vector":[1,"x"]}]}"#, 64).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidBody);
        assert!(e.message.starts_with("entities[0].vector[1]:"), "{e}");
        let e = decode_json::<Body>(br#"{"entities":[{}]}"#, 64).unwrap_err();
        assert!(e.message.contains("missing field `vector`"), "{e}");
        let e = decode_json::<Body>(br#"{"entities":["#, 64).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        let e = decode_json::<Body>(br#"{"entities":[]} x"#, 64).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        let e = decode_json::<Body>(&[b'['; 100], 64).unwrap_err();
        assert_eq!(e.code, ErrorCode::JsonTooDeep);
        assert!(decode_json::<Body>(br#"{"entities":[]}"#, 64).is_ok());
    }

    #[test]
    fn a_value_of_the_wrong_kind_for_an_enum_names_its_field() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        enum Metric {
            Cosine,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Spec {
            metric: Metric,
        }
        for bad in [
            br#"{"metric": 1}"#.as_slice(),
            br#"{"metric": [true]}"#.as_slice(),
        ] {
            let e = decode_json::<Spec>(bad, 64).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidBody, "{e}");
            assert!(e.message.starts_with("metric:"), "{e}");
        }
        // Malformed text stays malformed JSON.
        let e = decode_json::<Spec>(br#"{"metric": 1"#, 64).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        assert!(decode_json::<Spec>(br#"{"metric": "cosine"}"#, 64).is_ok());
    }

    #[test]
    fn content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
