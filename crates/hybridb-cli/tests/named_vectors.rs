//! Named dense and sparse vectors through the real `hybridb` binary: `collections create
//! --vector`, `import` of JSON lines carrying `vectors` (bad ones reported by line), `export`
//! and re-import round trips that keep every vector exactly, and `search --using`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_hybridb");

fn hybridb(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn ok(data: &Path, args: &[&str]) -> String {
    let out = hybridb(data, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The lines of an export, without the fields a write sets (`version`, `updated_at`), by id.
fn exported(data: &Path, collection: &str, file: &Path) -> Vec<Value> {
    ok(
        data,
        &["export", collection, "--out", file.to_str().unwrap()],
    );
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            assert!(o.remove("version").is_some() && o.remove("updated_at").is_some());
            v
        })
        .collect()
}

fn create(data: &Path, name: &str, extra: &[&str]) {
    let mut args = vec!["collections", "create", name];
    args.extend_from_slice(extra);
    ok(data, &args);
}

const SPECS: [&str; 6] = [
    "--vector",
    "title=dense:3:dot",
    "--vector",
    "terms=sparse:idf",
    "--vector",
    r#"img={"type":"dense","dim":2,"metric":"l2","index":{"kind":"exact"}}"#,
];

#[test]
fn import_export_round_trip_keeps_named_dense_and_sparse_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args = vec!["--dim", "2", "--metric", "l2"];
    args.extend_from_slice(&SPECS);
    create(&data, "docs", &args);
    let list = ok(&data, &["--json", "collections", "list"]);
    let list: Value = serde_json::from_str(&list).unwrap();
    let info = &list["collections"][0];
    assert_eq!(
        info["config"]["vectors"]["terms"],
        json!({"type": "sparse", "idf": true})
    );
    assert_eq!(info["config"]["vectors"]["img"]["index"]["kind"], "exact");

    let input = dir.path().join("in.jsonl");
    let mut f = std::fs::File::create(&input).unwrap();
    let good = [
        json!({"key": "a", "payload": {"n": 1}, "vector": [0.0, 0.5], "vectors": {
            "title": [0.25, -1.5, 3.0], "terms": {"indices": [2, 40, 4000000000u32], "values": [0.5, 1.25, -2.0]},
            "img": [1.0, 2.0]}}),
        json!({"key": "b", "payload": {"n": 2}, "vector": [1.0, 0.5], "vectors": {
            "terms": {"indices": [40], "values": [3.0]}}}),
        json!({"key": "c", "payload": {"n": 3}, "vector": [2.0, 0.5]}),
    ];
    for line in &good {
        writeln!(f, "{line}").unwrap();
    }
    // Bad lines are reported by number and left out.
    writeln!(
        f,
        r#"{{"key":"x","vector":[0,0],"vectors":{{"colour":[1]}}}}"#
    )
    .unwrap();
    writeln!(
        f,
        r#"{{"key":"y","vector":[0,0],"vectors":{{"terms":{{"indices":[9,3],"values":[1,1]}}}}}}"#
    )
    .unwrap();
    writeln!(
        f,
        r#"{{"key":"z","vector":[0,0],"vectors":{{"terms":[1,2]}}}}"#
    )
    .unwrap();
    writeln!(f, r#"{{"key":"w","vectors":{{"img":[1,2]}}}}"#).unwrap();
    drop(f);
    let out = hybridb(&data, &["import", "docs", input.to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for words in [
        "line 4: the collection has no vector named \"colour\"",
        "line 5: vector \"terms\": sparse vector index 3 at position 1",
        "line 6: vector \"terms\" is declared sparse, got a dense vector",
        "line 7: missing `vector` (the collection's default vector, dimension 2)",
    ] {
        assert!(stderr.contains(words), "{words}: {stderr}");
    }
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 3 entities"));

    // The export holds every vector exactly as written; entities without named vectors have
    // no `vectors`.
    let first = exported(&data, "docs", &dir.path().join("one.jsonl"));
    assert_eq!(first.len(), 3);
    let by_n = |n: i64| {
        first
            .iter()
            .find(|e| e["payload"]["n"] == n)
            .unwrap()
            .clone()
    };
    for (n, line) in good.iter().enumerate() {
        let e = by_n(n as i64 + 1);
        assert_eq!(e["vector"], line["vector"]);
        assert_eq!(e.get("vectors"), line.get("vectors"), "{e}");
    }

    // Imported into a collection declared the same way, it exports the same.
    let mut args = vec!["--dim", "2", "--metric", "l2"];
    args.extend_from_slice(&SPECS);
    create(&data, "copy", &args);
    ok(
        &data,
        &[
            "import",
            "copy",
            dir.path().join("one.jsonl").to_str().unwrap(),
        ],
    );
    let second = exported(&data, "copy", &dir.path().join("two.jsonl"));
    assert_eq!(first, second);

    // Searches by a named dense vector and by a sparse vector.
    let hits = ok(
        &data,
        &[
            "--json",
            "search",
            "docs",
            "--using",
            "terms",
            "--vector",
            r#"{"indices":[40],"values":[1.0]}"#,
            "--with-vector",
        ],
    );
    let hits: Value = serde_json::from_str(&hits).unwrap();
    let ids: Vec<&Value> = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| &h["id"])
        .collect();
    assert_eq!(ids, [&by_n(2)["id"], &by_n(1)["id"]], "{hits}");
    assert_eq!(hits["hits"][1]["vectors"], by_n(1)["vectors"]);
    let hits = ok(
        &data,
        &[
            "--json", "search", "docs", "--using", "title", "--vector", "0,0,1",
        ],
    );
    let hits: Value = serde_json::from_str(&hits).unwrap();
    assert_eq!(hits["hits"].as_array().unwrap().len(), 1, "{hits}");
    let bad = hybridb(
        &data,
        &[
            "search",
            "docs",
            "--vector",
            r#"{"indices":[1],"values":[1]}"#,
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("needs --using"));
}

#[test]
fn collections_with_named_vectors_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = hybridb(&data, &["collections", "create", "bare"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least one named vector"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = hybridb(
        &data,
        &["collections", "create", "bad", "--vector", "t=dense:x"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("DIM is not a number"));
    create(
        &data,
        "named",
        &["--vector", "text=dense:2", "--vector", "bm25=sparse"],
    );
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"key":"a","vectors":{"text":[1,0]}}"#,
            "\n",
            r#"{"key":"b","vectors":{"bm25":{"indices":[1],"values":[2]}}}"#,
            "\n",
            r#"{"key":"c","vector":[1,0]}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = hybridb(&data, &["import", "named", input.to_str().unwrap()]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "line 3: `vector` of dimension 2 given, but the collection has no default vector"
        ),
        "{stderr}"
    );
    let lines = exported(&data, "named", &dir.path().join("out.jsonl"));
    assert_eq!(lines.len(), 2);
    for line in &lines {
        assert!(line.get("vector").is_none(), "{line}");
        assert!(line["vectors"].is_object(), "{line}");
    }
}
