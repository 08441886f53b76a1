#!/usr/bin/env bash
# The kernel half of a proxied request (s1: HTTP/1.1 keep-alive, h2load
# --h1 -c64), HAProxy against rampart builds: per request, the proxy's
# user and system CPU time (/proc/PID/stat), context switches (voluntary
# and not, /proc/PID/status summed over its threads), page faults, and the
# system calls it made with how many failed (perf trace -s, in a second
# run: tracing slows the proxy, so its times are not used).
# Same topology as ../shared/bench: proxy on CPU 0 (one worker), origin
# nginx and h2load on CPU 1; run ../shared/bench/run.sh once first.
#
#   bench/kernel.sh RAMPART_BIN... [-- N]      (N requests, default 300000)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    bins+=("$1")
    shift
done
[ "${1:-}" = "--" ] && shift
n=${1:-300000}
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
start_origin
work=$(mktemp -d)
haproxy_cfg "$work/haproxy.cfg"

ticks() { # PID -> "utime stime" in clock ticks
    awk '{print $14, $15}' "/proc/$1/stat"
}
switches() { # PID -> "voluntary nonvoluntary", all threads
    local v=0 nv=0 t
    for t in /proc/"$1"/task/*; do
        v=$((v + $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status")))
        nv=$((nv + $(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$t/status")))
    done
    echo "$v $nv"
}
faults() { # PID -> minor faults
    awk '{print $10}' "/proc/$1/stat"
}
load() { taskset -c 1 timeout 900 h2load --h1 -t1 -c64 -n "$1" http://127.0.0.1:8080/ >/dev/null 2>&1; }

measure() { # NAME CMD...
    local name=$1
    shift
    taskset -c 0 "$@" >"$work/$name.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    wait_port 8080 60 || { echo "$name did not start: $(cat "$work/$name.log")" >&2; exit 1; }
    load 20000 # warm: connections to the origin, buffers
    local t0 s0 f0 t1 s1 f1 hz
    read -r -a t0 <<<"$(ticks "$pid")"
    read -r -a s0 <<<"$(switches "$pid")"
    f0=$(faults "$pid")
    load "$n"
    read -r -a t1 <<<"$(ticks "$pid")"
    read -r -a s1 <<<"$(switches "$pid")"
    f1=$(faults "$pid")
    hz=$(getconf CLK_TCK)
    # The same load again, traced: system calls and their errors.
    perf trace -s -p "$pid" -o "$work/$name.trace" &
    local tracer=$!
    sleep 1
    load "$n"
    kill -INT "$tracer"
    wait "$tracer" 2>/dev/null || true
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    awk -v nm="$name" -v n="$n" -v hz="$hz" -v u="$((t1[0] - t0[0]))" -v s="$((t1[1] - t0[1]))" \
        -v vc="$((s1[0] - s0[0]))" -v nvc="$((s1[1] - s0[1]))" -v pf="$((f1 - f0))" 'BEGIN {
        printf "%s: user %.2f µs/req, system %.2f µs/req; context switches %.3f/req (voluntary %.3f, involuntary %.3f); minor faults %.4f/req\n",
            nm, u / hz * 1e6 / n, s / hz * 1e6 / n, (vc + nvc) / n, vc / n, nvc / n, pf / n }'
    # perf trace -s: per thread, "syscall calls errors total min avg max stddev"
    awk -v n="$n" '
        $1 ~ /^[a-z_0-9]+$/ && $2 ~ /^[0-9]+$/ && $3 ~ /^[0-9]+$/ { calls[$1] += $2; errs[$1] += $3 }
        END { for (c in calls) if (calls[c] / n >= 0.01) printf "    %-16s %6.3f calls/req, %6.3f errors/req\n", c, calls[c] / n, errs[c] / n }
    ' "$work/$name.trace" | sort -k2 -rn
}

measure haproxy haproxy -db -f "$work/haproxy.cfg"
for bin in "${bins[@]}"; do
    mkdir -p "$work/r"
    BENCH_WORKDIR="$work/r" RAMPART_BIN=/bin/true bash "$root/bench/ours.sh" >/dev/null 2>&1
    measure "$(basename "$bin")" "$bin" --log-level warn run -c "$work/r/rampart.toml"
done
rm -rf "$work"
