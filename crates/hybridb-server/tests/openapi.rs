//! The OpenAPI document against the router that serves it: every route the router serves is
//! documented and every documented route is served (method by method), and the document is
//! complete where a client generator needs it (unique operation ids, summaries, descriptions,
//! typed error answers whose codes fit their status).
//!
//! The validation against the OpenAPI 3.1 schema and the generated-client walkthrough run in
//! `crates/hybridb-cli/tests/openapi_client.rs` (they need Python and the `hybridb` binary).

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hybridb_server::{ErrorCode, ServerConfig};
use serde_json::Value;
use tower::ServiceExt;

const DOCS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/server.md"));

/// Every method axum can route.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];

/// The application on a fresh database (kept alive by the returned folder).
fn app() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = hybridb::Database::builder()
        .index_threads(1)
        .open(dir.path().join("t.redb"))
        .unwrap();
    let app = hybridb_server::app(db, ServerConfig::default());
    (app.router, dir)
}

async fn call(router: &Router, method: Method, path: &str) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    // Streams (`/changes/stream`) never end: only a bounded, finished body is read.
    let body = if status == StatusCode::OK && path == "/openapi.json" {
        axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap()
            .to_vec()
    } else {
        Vec::new()
    };
    (status, body)
}

/// The served document.
async fn served_document(router: &Router) -> Value {
    let (status, body) = call(router, Method::GET, "/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice(&body).unwrap()
}

/// The route templates the router matches, from its `Debug` form: axum has no API that lists
/// routes, but its `Debug` prints the path table (`node: Node { paths: {RouteId(3): "/x"} }`)
/// of the routes and, separately, of the fallback. The test fails (rather than passing on
/// nothing) if this form changes.
fn router_paths(router: &Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let routes = debug
        .split("fallback_router:")
        .next()
        .expect("a router's Debug form");
    let table = routes
        .split("node: Node { paths: {")
        .nth(1)
        .expect("axum's Debug form of a router lists `node: Node { paths: {...} }`");
    let mut paths = BTreeSet::new();
    for quoted in table.split(": \"").skip(1) {
        let path = quoted.split('"').next().unwrap_or_default();
        paths.insert(path.to_string());
    }
    assert!(
        paths.contains("/collections/{name}") && paths.contains("/healthz"),
        "could not read the route table from the router's Debug form: {paths:?}"
    );
    paths
}

/// A request path matching `template`.
fn instance(template: &str) -> String {
    template
        .split('/')
        .map(|segment| match segment {
            "{id}" => "8e137603-08bc-5e94-bcea-14d37598272a",
            s if s.starts_with("{*") => "a/b",
            s if s.starts_with('{') => "probe",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `(METHOD, template)` of every operation in the document.
fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

/// Every documented route is served, and the router serves nothing undocumented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_serves_exactly_the_documented_routes() {
    let (router, _dir) = app();
    let doc = served_document(&router).await;
    let documented = documented_routes(&doc);
    let mut templates = router_paths(&router);
    templates.extend(documented.iter().map(|(_, path)| path.clone()));
    // Probe every method on every template: axum answers 405 for a method the path does not
    // route (handlers never do); anything else means the route is served.
    let mut served = BTreeSet::new();
    for template in &templates {
        let path = instance(template);
        for method in METHODS {
            let (status, _) = call(&router, method.clone(), &path).await;
            if status != StatusCode::METHOD_NOT_ALLOWED {
                served.insert((method.to_string(), template.clone()));
            }
        }
    }
    // axum answers HEAD wherever it routes GET.
    let expected: BTreeSet<(String, String)> = documented
        .iter()
        .flat_map(|(method, path)| {
            let head = (method == "GET").then(|| ("HEAD".to_string(), path.clone()));
            std::iter::once((method.clone(), path.clone())).chain(head)
        })
        .collect();
    let undocumented: Vec<_> = served.difference(&expected).collect();
    let unserved: Vec<_> = expected.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in the OpenAPI document (give the handler a #[utoipa::path] and \
         register it with routes!): {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    assert!(served.len() >= 29, "{served:?}");
}

/// The Qdrant port serves at its root exactly the routes the document lists under `/qdrant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qdrant_port_serves_the_documented_qdrant_routes() {
    let dir = tempfile::tempdir().unwrap();
    let db = hybridb::Database::builder()
        .index_threads(1)
        .open(dir.path().join("t.redb"))
        .unwrap();
    let router = hybridb_server::apps(db, ServerConfig::default()).qdrant;
    let doc = serde_json::to_value(hybridb_server::openapi()).unwrap();
    let documented: BTreeSet<(String, String)> = documented_routes(&doc)
        .into_iter()
        .filter_map(|(method, path)| {
            let rest = path.strip_prefix("/qdrant")?;
            Some((
                method,
                if rest.is_empty() {
                    "/".to_string()
                } else {
                    rest.to_string()
                },
            ))
        })
        .collect();
    assert!(documented.len() >= 20, "{documented:?}");
    let templates: BTreeSet<String> = documented.iter().map(|(_, p)| p.clone()).collect();
    for template in &templates {
        let path = instance(template);
        for method in METHODS {
            let (status, _) = call(&router, method.clone(), &path).await;
            let served = status != StatusCode::METHOD_NOT_ALLOWED;
            let listed = documented.contains(&(method.to_string(), template.clone()))
                || (method == Method::HEAD
                    && documented.contains(&("GET".to_string(), template.clone())));
            assert_eq!(served, listed, "{method} {template}: {status}");
        }
    }
    // Unknown paths answer Qdrant's 404.
    let response = router
        .clone()
        .oneshot(Request::get("/nothing").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        v["status"]["error"]
            .as_str()
            .unwrap()
            .starts_with("Not found"),
        "{v}"
    );
}

/// Backticked words of a description (`code`, `entities[3]`, ...).
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

#[test]
fn every_operation_has_an_id_a_summary_and_described_typed_answers() {
    let doc = serde_json::to_value(hybridb_server::openapi()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let codes: BTreeMap<&str, ErrorCode> =
        ErrorCode::ALL.iter().map(|c| (c.as_str(), *c)).collect();
    let mut ids = BTreeSet::new();
    for (method, path) in documented_routes(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let at = format!("{method} {path}");
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{at}: operation id {id:?}"
        );
        assert!(ids.insert(id.to_string()), "{at}: operation id {id} twice");
        let summary = op["summary"].as_str().unwrap_or_default();
        assert!(
            !summary.is_empty() && !summary.contains('\n') && summary.len() <= 40,
            "{at}: summary {summary:?}"
        );
        assert!(
            op["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{at}: no description"
        );
        let responses = op["responses"].as_object().unwrap();
        for (status, response) in responses {
            let description = response["description"].as_str().unwrap_or_default();
            assert!(!description.is_empty(), "{at} {status}: no description");
            let status: u16 = status.parse().unwrap();
            if status < 400 {
                continue;
            }
            if path.starts_with("/qdrant") {
                // Qdrant's error form has no code: the causes are described in words.
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/QdrantError",
                    "{at} {status}"
                );
                continue;
            }
            assert_eq!(
                response["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{at} {status}"
            );
            let named: Vec<ErrorCode> = backticked(description)
                .into_iter()
                .filter_map(|word| codes.get(word).copied())
                .collect();
            assert!(
                !named.is_empty(),
                "{at} {status}: names no code: {description}"
            );
            for code in named {
                assert_eq!(
                    code.status().as_u16(),
                    status,
                    "{at}: `{code}` is documented under {status}"
                );
            }
        }
        // What every route can answer, from the shared layers.
        for status in ["500", "503"] {
            assert!(responses.contains_key(status), "{at}: no {status}");
        }
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{at}: no success answer"
        );
        if let Some(body) = op.get("requestBody") {
            for status in ["400", "413", "415"] {
                assert!(responses.contains_key(status), "{at}: no {status}");
            }
            // A named schema, never "or null" (the server takes no `null` body).
            let schema = &body["content"]["application/json"]["schema"];
            assert!(schema["$ref"].is_string(), "{at}: request body {schema}");
        }
        let open = op["security"] == serde_json::json!([{}]);
        assert_eq!(
            open,
            path == "/healthz" || path == "/readyz",
            "{at}: security {}",
            op["security"]
        );
        assert_eq!(responses.contains_key("401"), !open, "{at}: 401");
    }
    // The error code is an enum of every code.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["ErrorDetail"]["properties"]["code"]["$ref"],
        "#/components/schemas/ErrorCode"
    );
    let listed: Vec<&str> = schemas["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(listed, all);
}

/// Each code the server can send is in the error table of `docs/server.md`, with its status.
#[test]
fn docs_list_every_error_code_with_its_status() {
    let table: Vec<&str> = DOCS
        .split("## Errors")
        .nth(1)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("| 4") || l.starts_with("| 5"))
        .collect();
    for code in ErrorCode::ALL {
        let row = table
            .iter()
            .find(|row| backticked(row).contains(&code.as_str()))
            .unwrap_or_else(|| panic!("docs/server.md's error table lacks `{code}`"));
        assert!(
            row.starts_with(&format!("| {} ", code.status().as_u16())),
            "docs/server.md lists `{code}` under another status: {row}"
        );
    }
}
