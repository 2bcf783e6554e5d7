//! The engine's folders are layers: each imports only from the folders below it, so there is
//! no import cycle between folders. The order is written once, in [`LAYERS`]; this test reads
//! the sources and fails on an upward import, on a folder that is not placed in the order, on a
//! layer that reaches another through the crate root's re-exports (which would hide where an
//! item lives), and on a source file over [`MAX_LINES`] lines whose first lines do not say why
//! it must be one file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. `docs/ARCHITECTURE.md` says what each folder owns.
const LAYERS: &[&str] = &[
    "model", "index", "query", "observe", "store", "db", "coord", "ops",
];

/// Longer files need a first-lines comment containing [`LONG_FILE_REASON`].
const MAX_LINES: usize = 800;
const LONG_FILE_REASON: &str = "One file because";

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments (line comments, doc comments, block comments) and without
/// the contents of string literals, so that neither can look like a path.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some(end) = raw_string_end(b, i) {
            out.push_str("\"\"");
            i = end;
        } else if b[i] == b'"' {
            // A string literal.
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') {
            // A char literal such as '"' or '\n' (lifetimes have no closing quote).
            let end = if b[i + 1] == b'\\' {
                // '\n', '\'', '\u{..}': the closing quote comes after the escaped character.
                b[i + 3..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map_or(b.len(), |p| i + 4 + p)
            } else {
                i + 3
            };
            out.push_str("' '");
            i = end;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// If a raw string literal (`r"..."`, `r#"..."#`, also `br`) starts at `i`, the index past
/// its end.
fn raw_string_end(b: &[u8], i: usize) -> Option<usize> {
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if b[i] != b'r' || (i > 0 && ident(b[i - 1]) && b[i - 1] != b'b') {
        return None;
    }
    let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
    if b.get(i + 1 + hashes) != Some(&b'"') {
        return None;
    }
    let mut close = vec![b'"'];
    close.extend(std::iter::repeat_n(b'#', hashes));
    let body = i + 2 + hashes;
    let end = b[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())?;
    Some(body + end + close.len())
}

/// The first segment of every `crate::` path in `code`, including each branch of a
/// `use crate::{a::x, b::{y, z}}` tree.
fn crate_roots(code: &str) -> Vec<String> {
    let mut roots = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::`, `hybridb_crate::`, ...
        }
        if let Some(tree) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in tree.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (depth == 1 && c == ',') {
                    let first = item
                        .trim()
                        .split("::")
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    if !first.is_empty() {
                        roots.push(first);
                    }
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else if depth == 1 {
                    item.push(c);
                } else if depth > 1 && c != '{' {
                    // inside a nested tree: only the segment before it counts
                }
            }
        } else {
            let ident: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !ident.is_empty() {
                roots.push(ident);
            }
        }
    }
    roots
}

/// Names the crate root re-exports (`pub use layer::...::Name;`): users' names, not the
/// layers' — a layer naming `crate::Name` would hide which layer it depends on.
fn root_reexports(lib: &str) -> BTreeSet<String> {
    let code = code_only(lib);
    let mut names = BTreeSet::new();
    for stmt in code.split(';') {
        let stmt = stmt.trim();
        let Some(path) = stmt
            .rsplit("pub use ")
            .next()
            .filter(|_| stmt.contains("pub use "))
        else {
            continue;
        };
        let path = path.trim();
        if let Some(open) = path.find('{') {
            for item in path[open + 1..].trim_end_matches('}').split(',') {
                let name = item.trim().rsplit(" as ").next().unwrap_or("").trim();
                let name = name.rsplit("::").next().unwrap_or("");
                if !name.is_empty() {
                    names.insert(name.to_string());
                }
            }
        } else {
            let name = path.rsplit(" as ").next().unwrap_or("").rsplit("::").next();
            if let Some(n) = name.filter(|n| !n.is_empty()) {
                names.insert(n.to_string());
            }
        }
    }
    names
}

/// Every violation in the sources given as `(path relative to src, text)`.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let rank: BTreeMap<&str, usize> = LAYERS.iter().enumerate().map(|(i, l)| (*l, i)).collect();
    let lib = files
        .iter()
        .find(|(p, _)| p == "lib.rs")
        .map(|(_, s)| s.as_str())
        .unwrap_or("");
    let reexports = root_reexports(lib);
    let mut found = Vec::new();
    for (path, text) in files {
        let lines = text.lines().count();
        let head: String = text.lines().take(12).collect::<Vec<_>>().join("\n");
        if lines > MAX_LINES && !head.contains(LONG_FILE_REASON) {
            found.push(format!(
                "{path}: {lines} lines (over {MAX_LINES}); split it, or say in its first lines \
                 \"{LONG_FILE_REASON} ...\""
            ));
        }
        let Some((folder, _)) = path.split_once('/') else {
            if path != "lib.rs" {
                found.push(format!(
                    "{path}: a file beside lib.rs; put it in a layer folder"
                ));
            }
            continue;
        };
        let Some(&own) = rank.get(folder) else {
            found.push(format!("{path}: folder `{folder}` is not in LAYERS"));
            continue;
        };
        for root in crate_roots(&code_only(text)) {
            if let Some(&used) = rank.get(root.as_str()) {
                if used > own {
                    found.push(format!(
                        "{path}: layer `{folder}` imports `crate::{root}`, a layer above it"
                    ));
                }
            } else if reexports.contains(&root) {
                found.push(format!(
                    "{path}: `crate::{root}` is a root re-export; name its layer's path instead"
                ));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

fn sources() -> Vec<(String, String)> {
    let dir = src_dir();
    let mut paths = Vec::new();
    rust_files(&dir, &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&dir)
                .expect("under src")
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(&p).expect("read source");
            (rel, text)
        })
        .collect()
}

#[test]
fn folders_import_only_downward() {
    let files = sources();
    assert!(files.len() > 40, "found only {} source files", files.len());
    let found = violations(&files);
    assert!(
        found.is_empty(),
        "layering violations:\n{}",
        found.join("\n")
    );
}

#[test]
fn lib_declares_exactly_the_layers() {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).expect("read lib.rs");
    let code = code_only(&lib);
    let declared: Vec<&str> = code
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?.strip_suffix(';')
        })
        .collect();
    let mut declared: Vec<String> = declared.into_iter().map(String::from).collect();
    declared.sort();
    let mut layers: Vec<String> = LAYERS.iter().map(|s| s.to_string()).collect();
    layers.sort();
    assert_eq!(
        declared, layers,
        "lib.rs declares the layers as its modules, and nothing else"
    );
    let mut folders: Vec<String> = std::fs::read_dir(src_dir())
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    folders.sort();
    assert_eq!(
        folders, layers,
        "every folder of src is a layer, and every layer a folder"
    );
}

#[test]
fn the_check_catches_what_it_must() {
    let lib = "pub use db::handle::Database;\npub use model::{error::Error, id::EntityId};\n";
    let ok = "use crate::model::id::EntityId;\nuse crate::index::{bitset::SlotBitset, slots};\n\
              /// [`crate::coord`] in a doc comment is not an import.\n\
              const S: &str = \"crate::ops in a string\";\n";
    let files = |path: &str, text: &str| {
        vec![
            ("lib.rs".to_string(), lib.to_string()),
            ("query/ok.rs".to_string(), ok.to_string()),
            (path.to_string(), text.to_string()),
        ]
    };
    assert!(violations(&files("query/fine.rs", ok)).is_empty());
    let upward = violations(&files("model/bad.rs", "use crate::store::schema::META;\n"));
    assert_eq!(upward.len(), 1, "{upward:?}");
    assert!(upward[0].contains("a layer above"), "{upward:?}");
    let in_tree = violations(&files(
        "index/bad.rs",
        "use crate::{model::id::EntityId, db::x};\n",
    ));
    assert_eq!(in_tree.len(), 1, "{in_tree:?}");
    let inline = violations(&files("store/bad.rs", "fn f() { crate::coord::call(); }\n"));
    assert_eq!(inline.len(), 1, "{inline:?}");
    let via_root = violations(&files("index/bad.rs", "fn f(_: crate::Database) {}\n"));
    assert!(via_root[0].contains("root re-export"), "{via_root:?}");
    let lost = violations(&files("util/x.rs", "\n"));
    assert!(lost[0].contains("not in LAYERS"), "{lost:?}");
    let long = "\n".repeat(MAX_LINES + 1);
    assert_eq!(violations(&files("ops/long.rs", &long)).len(), 1);
    let said = format!("//! {LONG_FILE_REASON} it is generated.\n{long}");
    assert!(violations(&files("ops/long.rs", &said)).is_empty());
}
