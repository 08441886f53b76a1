#!/usr/bin/env bash
# What one proxied request costs the kernel, rampart against HAProxy, on
# the s1 workload (HTTP/1.1 keep-alive, 64 connections, the origin nginx
# from /tmp/bench-origin): system calls per request (strace -c -f over N
# requests), TCP segments per request on loopback (nstat, without strace),
# and, for rampart, where its CPU time goes by crate and by symbol (perf,
# cpu-clock).
#
#   bench/step0.sh RAMPART_BIN [N]        (N requests per count, default 40000)
#
# Prints a report on stdout. HAProxy runs with one thread, the harness's
# settings (keep-alive both sides, `http-reuse always`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin=$1 n=${2:-40000}
conf=/tmp/bench-origin/nginx.conf
[ -f "$conf" ] || { echo "no $conf: run ../shared/bench/run.sh once first" >&2; exit 2; }
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
taskset -c 1 nginx -c "$conf" -g 'daemon off;' &
pids+=("$!")
wait_port 9101 || { echo "origin did not start" >&2; exit 1; }

haproxy_cfg "$work/haproxy.cfg"

start() { # TARGET [WRAPPER...] -> pid of the proxy process in $proxy
    local target=$1
    shift
    if [ "$target" = haproxy ]; then
        taskset -c 0 "$@" haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
    else
        printf '#!/bin/sh\nexec %s %s "$@"\n' "$*" "$bin" >"$work/wrap.sh"
        chmod +x "$work/wrap.sh"
        mkdir -p "$work/r"
        BENCH_WORKDIR="$work/r" RAMPART_BIN="$work/wrap.sh" taskset -c 0 bash "$root/bench/ours.sh" >"$work/rampart.log" 2>&1 &
    fi
    launcher=$!
    pids+=("$launcher")
    wait_port 8080 30 || { echo "$target did not start" >&2; exit 1; }
}

stop() { # stop the proxy started last (and the tracer, if any), wait for it
    pkill -TERM -P "$launcher" 2>/dev/null || true
    kill -TERM "$launcher" 2>/dev/null || true
    wait "$launcher" 2>/dev/null || true
    sleep 0.5
}

load() { # N
    taskset -c 1 h2load --h1 -t1 -c64 -n "$1" http://127.0.0.1:8080/ 2>/dev/null | awk '/^requests:/ {print $8}'
}

for target in rampart haproxy; do
    # System calls per request: strace over N requests after a warm-up.
    start "$target" strace -c -f -o "$work/strace-$target.txt"
    load 1000 >/dev/null
    done=$(load "$n")
    stop
    echo "== $target: system calls per request ($done requests measured, warm-up of 1000 included in the counts)"
    awk -v n=$((n + 1000)) '
        /^[ ]*[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ {
            calls = $4; name = $NF
            if (name != "total") printf "  %-14s %7.3f\n", name, calls / n
            else total = calls
        }
        END { printf "  %-14s %7.3f\n", "all", total / n }' "$work/strace-$target.txt" | sort -k2 -rn | head -10

    # TCP segments per request, every socket on loopback (client, proxy,
    # origin), without strace.
    start "$target"
    load 1000 >/dev/null
    nstat -n >/dev/null
    done=$(load "$n")
    segs=$(nstat -z TcpOutSegs | awk '/TcpOutSegs/ {print $2}')
    stop
    echo "== $target: TCP segments per request on loopback (all parties): $(awk -v s="$segs" -v n="$done" 'BEGIN {printf "%.2f", s / n}')"
done

# Where rampart's CPU time goes, summed by crate (user and kernel).
start rampart
load 1000 >/dev/null
pid=$(pgrep -f "^$bin " | head -1)
perf record -q -e cpu-clock -F 4999 -p "$pid" -o "$work/perf.data" -- sleep 8 >/dev/null 2>&1 &
rec=$!
load $((n * 3)) >/dev/null
wait "$rec" || true
stop
echo "== rampart: CPU samples by crate (perf, cpu-clock, during s1 load)"
perf report -i "$work/perf.data" --no-children --sort sym --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ {
        pct = $1; sub(/%/, "", pct); line = $0
        if (line ~ /\[k\]/) c = "kernel"
        else if (line ~ /hyper::/) c = "hyper"
        else if (line ~ /h2::/) c = "h2"
        else if (line ~ /rustls::|aws_lc/) c = "rustls/aws-lc"
        else if (line ~ /tokio::|mio::/) c = "tokio/mio"
        else if (line ~ /http::|httparse::|bytes::/) c = "http/httparse/bytes"
        else if (line ~ /rampart::/) c = "rampart"
        else if (line ~ /malloc|free|memcpy|memmove|memset|_int_|cfree/) c = "libc malloc/memcpy"
        else c = "other"
        sum[c] += pct
    }
    END { for (c in sum) printf "  %-22s %5.1f %%\n", c, sum[c] }' | sort -k2 -rn
echo "== rampart: the 30 user-space symbols with most CPU samples (% of all samples)"
perf report -i "$work/perf.data" --no-children --sort sym --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ && !/\[k\]/' | head -30 | cut -c1-150
