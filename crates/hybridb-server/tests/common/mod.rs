//! A real server on a loopback port, and a small blocking HTTP client for it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::time::Duration;

use hybridb::Database;
use hybridb_server::ServerConfig;
use serde_json::Value;

/// A server on 127.0.0.1:<ephemeral>, stopped (gracefully) on drop.
pub struct TestServer {
    pub base: String,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    agent: ureq::Agent,
}

/// An answer: status, parsed JSON body (or the text as a JSON string), headers.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: ureq::http::HeaderMap,
}

impl Answer {
    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<no code>")
    }
    pub fn message(&self) -> &str {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or("<no message>")
    }
}

impl TestServer {
    pub fn start() -> Self {
        Self::with_config(|_| {})
    }

    pub fn with_config(adjust: impl FnOnce(&mut ServerConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            backup_dir: Some(dir.path().join("backups")),
            ..ServerConfig::default()
        };
        adjust(&mut config);
        let db = Database::builder()
            .index_threads(1)
            .open(dir.path().join("db.redb"))
            .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                hybridb_server::serve(db, config, listener, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv().unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        TestServer {
            base: format!("http://{addr}"),
            dir,
            stop: Some(stop),
            thread: Some(thread),
            agent,
        }
    }

    /// Sends a request; `body` is sent as JSON unless `headers` set another content type.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        let has_ct = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !has_ct {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = match body {
            Some(bytes) => self.agent.run(b.body(bytes.to_vec()).unwrap()),
            None => self.agent.run(b.body(()).unwrap()),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.into_body().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            body,
            headers,
        }
    }

    pub fn get(&self, path: &str) -> Answer {
        self.raw("GET", path, None, &[])
    }

    pub fn send(&self, method: &str, path: &str, body: Value) -> Answer {
        self.raw(method, path, Some(body.to_string().as_bytes()), &[])
    }

    /// Like `send`, asserting the status.
    pub fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let a = self.send(method, path, body);
        assert!(
            (200..300).contains(&a.status),
            "{method} {path}: {} {}",
            a.status,
            a.body
        );
        a.body
    }

    /// Opens `/changes/stream`, runs `between` once the stream is open, and reads `n` events
    /// (`(event, id, data)`).
    pub fn read_stream(
        &self,
        query: &str,
        headers: &[(&str, &str)],
        n: usize,
        between: impl FnOnce(),
    ) -> Vec<(String, Option<String>, Value)> {
        let mut b = ureq::http::Request::builder()
            .method("GET")
            .uri(format!("{}/changes/stream{query}", self.base));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self.agent.run(b.body(()).unwrap()).unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let mut reader = BufReader::new(resp.into_body().into_reader());
        // The handler subscribed before answering: what `between` writes is streamed.
        between();
        let mut out = Vec::new();
        let (mut event, mut id, mut data) = (String::new(), None, String::new());
        while out.len() < n {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if !data.is_empty() {
                    out.push((
                        std::mem::take(&mut event),
                        id.take(),
                        serde_json::from_str(&data).unwrap(),
                    ));
                    data.clear();
                }
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("id:") {
                id = Some(v.trim().to_string());
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim());
            }
        }
        out
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
