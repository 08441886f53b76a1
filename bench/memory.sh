#!/usr/bin/env bash
# Memory of rampart builds side by side: idle connections (the harness's s5
# and s5tls: KiB of RSS per idle keep-alive connection that made one
# request, 5,000 of them, each in a fresh process) and memory given back
# after a storm (in a third process: 15,000 idle plain and 2,000 idle TLS
# connections opened, used once, closed; RSS 10 s later against RSS
# before). Same topology as ../shared/bench (rampart by
# bench/ours.sh, one worker, pinned to CPU 0; the origin nginx and the
# clients on CPU 1); run ../shared/bench/run.sh once first, for the
# origin's config in /tmp/bench-origin.
#
#   bench/memory.sh BIN...          (IDLE=5000 PLAIN=15000 TLS=2000 to change the counts)
#
# Prints one line per build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lib="$root/../shared/bench/benchlib.py"
idle=${IDLE:-5000} plain=${PLAIN:-15000} tls=${TLS:-2000}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
start_origin

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

pid=""
work=""
start() { # BIN: a fresh rampart in $pid
    work=$(mktemp -d)
    BENCH_WORKDIR=$work RAMPART_BIN="$1" taskset -c 0 bash "$root/bench/ours.sh" >"$work/log" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_port 8080 60 && wait_port 8443 60 || { echo "rampart did not start: $(cat "$work/log")" >&2; exit 1; }
}
stop() {
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
conns() { # N [--tls]: opens N idle connections against $pid, prints the JSON
    local port=8080
    [ "${2:-}" = --tls ] && port=8443
    taskset -c 1 python3 "$lib" idle-conns --port "$port" "${@:2}" --n "$1" --pid "$pid" --settle 2 --max-seconds 600
}

for bin in "$@"; do
    start "$bin"
    p=$(field "$(conns "$idle")" kib_per_conn)
    stop
    start "$bin"
    t=$(field "$(conns "$idle" --tls)" kib_per_conn)
    stop
    start "$bin"
    base=$(python3 "$lib" rss "$pid")
    conns "$plain" >/dev/null
    conns "$tls" --tls >/dev/null
    sleep 10
    after=$(python3 "$lib" rss "$pid")
    stop
    printf '%s: s5 %s KiB/conn, s5tls %s KiB/conn; RSS before %s KiB, 10 s after the storm %s KiB (+%s KiB, +%s %%)\n' \
        "$bin" "$p" "$t" "$base" "$after" "$((after - base))" \
        "$(awk -v a="$after" -v b="$base" 'BEGIN {printf "%.0f", (a - b) * 100 / b}')"
done
