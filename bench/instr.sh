#!/usr/bin/env bash
# Instructions per proxied request, counted by valgrind (callgrind): a
# figure that does not move with the host's speed, for comparing builds
# where CPU time is too noisy to show a few percent. Same topology as
# bench/ab.sh (the origin nginx from /tmp/bench-origin; rampart configured
# by bench/ours.sh with one worker). Two runs per build, of N1 and N2
# requests; the difference divided by N2 - N1 leaves out start-up and
# connection set-up.
#
#   bench/instr.sh BIN... [-- s1|s4 [N1 N2]]
#
# s1: HTTP/1.1 keep-alive, 64 connections (h2load --h1); s4: HTTP/2 over
# TLS, 32 connections × 10 streams. Prints, per build, the user-space
# instructions per request and the top functions of the N2 run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    bins+=("$1")
    shift
done
[ "${1:-}" = "--" ] && shift
scen=${1:-s1} n1=${2:-5000} n2=${3:-25000}
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
start_origin

load() { # N
    if [ "$scen" = s4 ]; then
        taskset -c 1 timeout 900 h2load -t1 -c32 -m10 -n "$1" https://127.0.0.1:8443/ >/dev/null 2>&1
    else
        taskset -c 1 timeout 900 h2load --h1 -t1 -c64 -n "$1" http://127.0.0.1:8080/ >/dev/null 2>&1
    fi
}

run() { # BIN N -> total user-space instructions (callgrind Ir)
    local work out pid
    work=$(mktemp -d)
    out="$work/callgrind.out"
    cat >"$work/vg.sh" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$out "$1" "\$@"
EOF
    chmod +x "$work/vg.sh"
    BENCH_WORKDIR=$work RAMPART_BIN="$work/vg.sh" taskset -c 0 bash "$root/bench/ours.sh" >"$work/log" 2>&1 &
    pid=$!
    pids+=("$pid")
    # valgrind starts slowly
    wait_port 8080 120 && wait_port 8443 120 || { echo "rampart did not start: $(cat "$work/log")" >&2; exit 1; }
    load "$2"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        [ -s "$out" ] && grep -q '^totals:' "$out" && break
        sleep 0.2
    done
    awk '/^totals:/ {print $2}' "$out"
    cp "$out" "/tmp/instr-last-$(basename "$1")-$2.out"
    rm -rf "$work"
}

for bin in "${bins[@]}"; do
    a=$(run "$bin" "$n1")
    b=$(run "$bin" "$n2")
    per=$(awk -v a="$a" -v b="$b" -v n1="$n1" -v n2="$n2" 'BEGIN {printf "%.0f", (b - a) / (n2 - n1)}')
    echo "$bin ($scen): $per instructions per request ($n1 requests: $a, $n2: $b)"
done
