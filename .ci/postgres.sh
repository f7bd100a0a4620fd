# A throwaway PostgreSQL cluster on 127.0.0.1 for the journal's PostgreSQL store tests.
# Source it, then `start_postgres`: it installs Debian's postgresql when initdb is missing,
# makes a cluster under target/postgres (under /tmp when running as root from a directory the
# postgres user cannot reach; a free port, trust auth on loopback only), exports
# WARDEN_TEST_POSTGRES (the URL tests connect to) and WARDEN_REQUIRE_POSTGRES=1 (so tests
# fail rather than skip without it), and stops and removes the cluster when the shell exits.

# The directory of PostgreSQL's server programs, or nothing (never fails, so that callers
# under `set -euo pipefail` go on to install it).
pg_bin() {
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    { ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true; } | sort -V | tail -n 1
    return 0
}

start_postgres() {
    local bin
    bin="$(pg_bin)"
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
        bin="$(pg_bin)"
    fi
    PG_DIR="$(pwd)/target/postgres"
    rm -rf "$PG_DIR"
    mkdir -p "$PG_DIR"
    # initdb and postgres refuse to run as root: run them as the postgres user then.
    local as=()
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$PG_DIR"
        as=(runuser -u postgres --)
        # The postgres user must reach the data directory: a checkout under a private home
        # (/root is 0700) cannot be; then the cluster lives under /tmp instead.
        if ! runuser -u postgres -- test -w "$PG_DIR"; then
            rm -rf "$PG_DIR"
            PG_DIR="$(mktemp -d /tmp/warden-postgres.XXXXXX)"
            chown postgres "$PG_DIR"
        fi
    fi
    PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    "${as[@]}" "$bin/initdb" -D "$PG_DIR/data" -U warden --auth=trust -E UTF8 >/dev/null
    "${as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=300 -c fsync=on" start >/dev/null
    PG_STOP=("${as[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -m fast stop)
    trap 'stop_postgres' EXIT
    export WARDEN_TEST_POSTGRES="postgres://warden@127.0.0.1:$PG_PORT/postgres"
    export WARDEN_REQUIRE_POSTGRES=1
    echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT (data in $PG_DIR)"
}

stop_postgres() {
    if [ -n "${PG_STOP+x}" ]; then
        "${PG_STOP[@]}" >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
        unset PG_STOP
    fi
}
