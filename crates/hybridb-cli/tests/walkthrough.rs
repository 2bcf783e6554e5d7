//! The curl walkthrough of `docs/server.md` runs exactly as written (against `hybridb serve`
//! started as the page says, in a fresh folder; only the port is a free one) and answers as
//! the page shows.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_hybridb");
const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/server.md"));
const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));

/// The shell block between the walkthrough markers of `docs/server.md`.
fn walkthrough() -> String {
    block_of(DOC)
}

/// The shell block between the walkthrough markers of a page.
fn block_of(page: &str) -> String {
    let start = page.find("<!-- walkthrough:start").expect("start marker");
    let end = page.find("<!-- walkthrough:end -->").expect("end marker");
    let block = &page[start..end];
    let code = block
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block");
    code.to_string()
}

#[test]
fn readme_walkthrough_is_the_tested_one() {
    assert_eq!(
        block_of(README),
        walkthrough(),
        "README.md and docs/server.md differ"
    );
}

#[test]
fn docs_walkthrough_works_as_written() {
    // A skip would pass without checking anything: curl is needed, as the walkthrough says.
    assert!(
        Command::new("curl").arg("--version").output().is_ok(),
        "curl is not installed: the walkthrough runs the README's curl commands (apt-get install curl)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(BIN)
        .args(["serve", "--port", "0", "--qdrant-port", "0"])
        .current_dir(dir.path())
        .env_remove("HYBRIDB_API_KEY")
        .env_remove("HYBRIDB_READ_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first.trim().rsplit("http://").next().unwrap().to_string();
    let script = walkthrough().replace("localhost:7411", &addr);
    let out = Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(server.wait().unwrap().success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 14, "{stdout}");
    let json: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
        .collect();
    let intro = "c4108535-e20b-5666-81f8-37e469cb4074";
    assert_eq!(json[0]["name"], "docs");
    assert_eq!(json[1]["written"][0]["id"], intro);
    assert_eq!(
        json[1]["written"][1]["id"],
        "8e137603-08bc-5e94-bcea-14d37598272a"
    );
    assert_eq!(json[2]["hits"][0]["id"], intro);
    assert_eq!(json[2]["hits"][0]["payload"]["title"], "Introduction");
    assert_eq!(
        json[3]["hits"][0]["id"],
        "8e137603-08bc-5e94-bcea-14d37598272a"
    );
    assert_eq!(json[4]["payload"]["lang"], "en");
    assert_eq!(json[5]["count"], 2);
    assert_eq!(json[6]["next_since"], 3);
    assert_eq!(json[7]["error"]["code"], "invalid_entity");
    assert_eq!(json[8]["deleted"], 1);
    assert_eq!(json[9]["entities"], 1);
    assert!(
        dir.path()
            .join("hybridb-data/backups/walkthrough.redb")
            .is_file()
    );
    assert_eq!(json[10]["clean"], true);
    assert_eq!(json[11]["last_seq"], 4);
    assert_eq!(
        lines[12],
        r#"hybridb_collection_entities{collection="docs"} 1"#
    );
    assert_eq!(json[13]["dropped"], true);
    // Only the one deliberate error.
    assert_eq!(stdout.matches("\"error\"").count(), 1);
}
