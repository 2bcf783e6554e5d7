//! Shared by the replication crate's PostgreSQL-backed tests.

/// The PostgreSQL URL the tests write to (`HYBRIDB_TEST_PG_URL`), or `None` with a printed
/// skip — which fails instead when `HYBRIDB_REQUIRE_PG` is set (CI), so a missing database
/// never passes silently there.
pub fn target_url() -> Option<String> {
    match std::env::var("HYBRIDB_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            let msg = "SKIPPED: HYBRIDB_TEST_PG_URL is not set (scripts/pgvector.sh up prints one)";
            assert!(std::env::var("HYBRIDB_REQUIRE_PG").is_err(), "{msg}");
            eprintln!("{msg}");
            None
        }
    }
}
