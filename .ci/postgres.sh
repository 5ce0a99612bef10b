#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (Debian's postgresql package).
#
#   dir=$(bash .ci/postgres.sh start)     # initdb into a temporary folder, start on 127.0.0.1
#   export MMSEARCH_TEST_PG_URL=$(cat "$dir/url")
#   bash .ci/postgres.sh stop "$dir"      # stop it and delete the folder
#   bash .ci/postgres.sh halt "$dir"      # kill it at once, keep the data (fault tests)
#   bash .ci/postgres.sh resume "$dir"    # start it again on the same port
#
# `start` installs the package when initdb is missing (needs root and apt-get), listens on
# 127.0.0.1 only, on a free port, with trust for the superuser `postgres` and password
# (scram) logins for every other role. It prints the data folder; the folder's `url` file
# holds the server's URL (database `postgres`). Run as root, the server runs as `postgres`.
set -euo pipefail

PG_BIN=${PG_BIN:-}
if [ -z "$PG_BIN" ]; then
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi

as_server_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/initdb" ]; then
        echo "postgres.sh: installing postgresql (apt-get)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 \
            || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; }
        PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    local dir port
    dir=$(mktemp -d "${TMPDIR:-/tmp}/mmsearch-pg-XXXXXX")
    chmod 755 "$dir"
    mkdir "$dir/data"
    if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; fi
    as_server_user "$PG_BIN/initdb" -D "$dir/data" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >"$dir/data/pg_hba.conf" <<EOF
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
EOF
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" >"$dir/port"
    serve "$dir"
    echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres" >"$dir/url"
    echo "$dir"
}

serve() {
    local dir=$1 port
    port=$(cat "$dir/port")
    as_server_user "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" \
        start >&2 || { cat "$dir/server.log" >&2; exit 1; }
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR}
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_server_user "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    halt) as_server_user "$PG_BIN/pg_ctl" -D "${2:?DIR}/data" -m immediate -w stop >&2 ;;
    resume) serve "${2:?DIR}" ;;
    *) echo "usage: $0 start | stop DIR | halt DIR | resume DIR" >&2; exit 2 ;;
esac
