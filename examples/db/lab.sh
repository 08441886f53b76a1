#!/usr/bin/env bash
# A database tier on one machine: two MariaDB servers (a primary on
# 127.0.0.1:3316 and a replica on 127.0.0.1:3317, replicating) behind
# rampart's writer endpoint (127.0.0.1:3306) and reader endpoint
# (127.0.0.1:3307); rampart's admin API on 127.0.0.1:9900.
#
#   examples/db/lab.sh up          start everything; returns once both endpoints answer
#   examples/db/lab.sh status      each server's role as rampart sees it, and what each endpoint uses
#   examples/db/lab.sh switchover  demote the primary, promote the replica (rampart follows on its own)
#   examples/db/lab.sh down        stop what `up` started (by PID) and remove its data
#
# Everything lives under LAB_DIR (default /tmp/rampart-db-lab). Needs the
# Debian packages mariadb-server and mariadb-client; RAMPART_BIN picks the
# rampart build (default: target/debug/rampart, built if missing). The
# ports can be moved with LAB_PRIMARY_PORT, LAB_REPLICA_PORT,
# LAB_WRITER_PORT, LAB_READER_PORT and LAB_ADMIN_PORT.
# Users: app / app (database `app`), monitor / monitor (rampart's check).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
lab=${LAB_DIR:-/tmp/rampart-db-lab}
bin=${RAMPART_BIN:-$root/target/debug/rampart}
ports=("${LAB_PRIMARY_PORT:-3316}" "${LAB_REPLICA_PORT:-3317}")
writer=${LAB_WRITER_PORT:-3306}
reader=${LAB_READER_PORT:-3307}
admin=${LAB_ADMIN_PORT:-9900}

sql() { # sql N STATEMENTS: run as root on server N (0 or 1), over its socket
    mariadb --no-defaults -S "$lab/db$1/sock" -uroot -N -B -e "$2"
}

wait_for() { # wait_for WHAT COMMAND...: up to 20 s
    local what=$1; shift
    for _ in $(seq 200); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "error: $what did not come up (logs in $lab)" >&2
    return 1
}

start_db() { # start_db N READ_ONLY
    local n=$1 d="$lab/db$1"
    mkdir -p "$d/tmp"
    mariadb-install-db --no-defaults --datadir="$d/data" --auth-root-authentication-method=normal \
        --skip-test-db --user="$(id -un)" --tmpdir="$d/tmp" >"$d/install.log" 2>&1
    local ro=()
    [ "$2" = yes ] && ro=(--read-only)
    mariadbd --no-defaults --datadir="$d/data" --port="${ports[$n]}" --bind-address=127.0.0.1 \
        --socket="$d/sock" --pid-file="$d/mariadbd.pid" --log-error="$d/error.log" \
        --log-bin="$d/binlog" --server-id=$((n + 1)) --binlog-format=ROW --skip-name-resolve \
        --user="$(id -un)" --tmpdir="$d/tmp" "${ro[@]}" >/dev/null 2>&1 &
    echo $! >"$d/pid"
    wait_for "MariaDB on port ${ports[$n]}" sql "$n" "SELECT 1"
}

answers() { # answers PORT: the endpoint serves a login and a query
    mariadb --no-defaults -h 127.0.0.1 -P "$1" -uapp -papp app -N -B -e "SELECT @@server_id"
}

reads_replica() { [ "$(answers "$reader")" = 2 ]; }

up() {
    if [ -e "$lab" ]; then
        echo "error: $lab exists: run '$0 down' first" >&2
        exit 1
    fi
    command -v mariadbd >/dev/null || { echo "error: install mariadb-server (apt install mariadb-server)" >&2; exit 1; }
    [ -x "$bin" ] || cargo build --quiet --manifest-path "$root/Cargo.toml"
    mkdir -p "$lab"
    start_db 0 no
    start_db 1 yes
    # Made on the primary; the replica gets it all through replication.
    sql 0 "CREATE USER repl@'127.0.0.1' IDENTIFIED BY 'repl';
           GRANT REPLICATION SLAVE ON *.* TO repl@'127.0.0.1';
           CREATE USER monitor@'127.0.0.1' IDENTIFIED BY 'monitor';
           GRANT REPLICA MONITOR ON *.* TO monitor@'127.0.0.1';
           CREATE DATABASE app;
           CREATE TABLE app.notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT, written_by INT);
           CREATE USER app@'127.0.0.1' IDENTIFIED BY 'app';
           GRANT ALL ON app.* TO app@'127.0.0.1';"
    follow 1 0
    # The example config, with this lab's ports.
    sed -e "s/127.0.0.1:9900/127.0.0.1:$admin/; s/127.0.0.1:3306/127.0.0.1:$writer/" \
        -e "s/127.0.0.1:3307/127.0.0.1:$reader/; s/127.0.0.1:3316/127.0.0.1:${ports[0]}/" \
        -e "s/127.0.0.1:3317/127.0.0.1:${ports[1]}/" "$root/examples/db/rampart.toml" >"$lab/rampart.toml"
    (cd "$lab" && exec "$bin" run --config "$lab/rampart.toml" >"$lab/rampart.log" 2>&1) &
    echo $! >"$lab/rampart.pid"
    wait_for "the writer endpoint (127.0.0.1:$writer)" answers "$writer"
    # The reader falls back to the primary until the replica's first check.
    wait_for "the reader endpoint (127.0.0.1:$reader) on the replica" reads_replica
    echo "writer 127.0.0.1:$writer -> server $(answers "$writer"), reader 127.0.0.1:$reader -> server $(answers "$reader")"
    echo "try:  mariadb -h 127.0.0.1 -P $writer -uapp -papp app    (logs and data in $lab)"
}

follow() { # follow N SOURCE: server N replicates from server SOURCE
    sql "$1" "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${ports[$2]}, MASTER_USER='repl',
              MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos; START SLAVE;"
}

switchover() {
    local old new
    if [ "$(sql 0 'SELECT @@global.read_only')" = 0 ]; then old=0 new=1; else old=1 new=0; fi
    echo "demoting server $((old + 1)) (port ${ports[$old]}), promoting server $((new + 1)) (port ${ports[$new]})"
    # 1. No more writes on the old primary.
    sql "$old" "SET GLOBAL read_only = 1"
    # 2. The replica applies everything the old primary wrote.
    local pos
    pos=$(sql "$old" "SELECT @@gtid_binlog_pos")
    [ "$(sql "$new" "SELECT MASTER_GTID_WAIT('$pos', 30)")" = 0 ] || { echo "error: the replica did not catch up" >&2; exit 1; }
    # 3. Promote it, and make the old primary its replica.
    sql "$new" "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0"
    follow "$old" "$new"
    echo "done: rampart's writer endpoint follows within two check intervals ('$0 status' shows it)"
}

status() {
    # rampart's own view (its admin API, through `rampart top`): the TCP
    # endpoints with the servers they use, then each server's role.
    "$bin" top --once --admin "127.0.0.1:$admin" | sed -n '/^TCP LISTENER/,$p' | grep -v '^(\*'
}

down() {
    [ -d "$lab" ] || { echo "nothing to stop ($lab does not exist)"; return 0; }
    for f in "$lab/rampart.pid" "$lab/db0/pid" "$lab/db1/pid"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$lab"
    echo "stopped and removed $lab"
}

case "${1:-}" in
    up) up ;;
    status) status ;;
    switchover) switchover ;;
    down) down ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
esac
