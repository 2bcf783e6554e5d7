//! `hybridb`: the command-line tool. `serve` runs the HTTP server; every other command works
//! on the database file directly (embedded), so it needs the file not to be open elsewhere
//! (a running server holds it: stop it first, or use the HTTP API).
//!
//! Output is for people by default; `--json` prints one JSON document for scripts. Errors go
//! to stderr with exit status 1; `verify` exits with 2 when it finds problems.

#![warn(missing_docs)]

mod cli;
mod commands;
mod common;
mod import;
mod replicate;

use clap::Parser;

fn main() {
    let args = cli::Args::parse();
    match commands::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", message(&e));
            std::process::exit(1);
        }
    }
}

/// The error and its causes, leaving out a cause its parent's text already holds (library
/// errors embed their source in their message).
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
