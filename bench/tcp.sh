#!/usr/bin/env bash
# TCP mode side by side: rampart's `mode = "tcp"` listeners against
# HAProxy's `mode tcp` (and HAProxy with `option splice-auto`), same
# topology as ../shared/bench: the proxy pinned to CPU 0 with one thread,
# the servers and the load generators on CPU 1. Run ../shared/bench/run.sh
# once first (it installs haproxy, nginx and wrk and writes the origin's
# config to /tmp/bench-origin); iperf3 comes from apt.
#
#   bench/tcp.sh [ROUNDS]         (TCP_SECONDS=8 per measure; RAMPART_BIN, RAMPART_BIN_B)
#
# t1 (bulk): one connection, iperf3 streaming through the proxy for
#    TCP_SECONDS: MB/s and proxy CPU µs per MB moved.
# t2 (connections): wrk -t1 -c64 with `Connection: close` to the origin
#    nginx through the proxy, so every request is a new TCP connection to
#    the proxy and from it: connections/s and proxy CPU µs per connection.
# Targets are interleaved round by round; each line is one run, then the
# medians. With RAMPART_BIN_B set, a second rampart build runs as
# `rampart-b` (for A/B comparisons, e.g. copy against splice).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=${1:-3} dur=${TCP_SECONDS:-8}
bin_a=${RAMPART_BIN:-$root/target/release/rampart}
bin_b=${RAMPART_BIN_B:-}
conf=/tmp/bench-origin/nginx.conf
[ -f "$conf" ] || { echo "no $conf: run ../shared/bench/run.sh once first" >&2; exit 2; }
command -v iperf3 >/dev/null || apt-get install -y -qq iperf3
[ -x "$bin_a" ] || cargo build --release --quiet --manifest-path "$root/Cargo.toml"
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
tck=$(getconf CLK_TCK)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

taskset -c 1 nginx -c "$conf" -g 'daemon off;' &
pids+=($!)
taskset -c 1 iperf3 -s -B 127.0.0.1 -p 5201 >/dev/null 2>&1 &
pids+=($!)
wait_port 9101 && wait_port 5201 || { echo "origin or iperf3 did not start" >&2; exit 1; }

cat >"$work/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen bulk
    bind 127.0.0.1:8090
    server s1 127.0.0.1:5201
listen conns
    bind 127.0.0.1:8091
    server s1 127.0.0.1:9101
EOF
sed 's/^defaults$/defaults\n    option splice-auto/' "$work/haproxy.cfg" >"$work/haproxy-splice.cfg"

cat >"$work/rampart.toml" <<EOF
[runtime]
workers = 1
state_dir = "$work/state"
[admin]
enabled = false
[[listener]]
name = "bulk"
address = "127.0.0.1:8090"
mode = "tcp"
pool = "iperf"
[[listener]]
name = "conns"
address = "127.0.0.1:8091"
mode = "tcp"
pool = "web"
[[pool]]
name = "iperf"
[[pool.server]]
address = "127.0.0.1:5201"
[[pool]]
name = "web"
[[pool.server]]
address = "127.0.0.1:9101"
EOF

start() { # TARGET -> sets PID
    case $1 in
        haproxy) taskset -c 0 haproxy -db -f "$work/haproxy.cfg" >"$work/$1.log" 2>&1 & ;;
        haproxy-splice) taskset -c 0 haproxy -db -f "$work/haproxy-splice.cfg" >"$work/$1.log" 2>&1 & ;;
        rampart) taskset -c 0 "$bin_a" --log-level warn run -c "$work/rampart.toml" >"$work/$1.log" 2>&1 & ;;
        rampart-b) taskset -c 0 "$bin_b" --log-level warn run -c "$work/rampart.toml" >"$work/$1.log" 2>&1 & ;;
    esac
    PID=$!
    pids+=("$PID")
    wait_port 8090 && wait_port 8091 || { echo "$1 did not start: $(cat "$work/$1.log")" >&2; exit 1; }
}

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

targets=(haproxy haproxy-splice rampart)
[ -n "$bin_b" ] && targets+=(rampart-b)
declare -A t1_mbs t1_cpu t2_cps t2_cpu
for r in $(seq 1 "$rounds"); do
    for t in "${targets[@]}"; do
        start "$t"
        # t1: one connection, bulk upload through the proxy.
        taskset -c 1 iperf3 -c 127.0.0.1 -p 8090 -t 2 >/dev/null 2>&1 || true # warm-up
        c0=$(ticks "$PID")
        bytes=$(taskset -c 1 iperf3 -c 127.0.0.1 -p 8090 -t "$dur" -J |
            python3 -c 'import json,sys; print(int(json.load(sys.stdin)["end"]["sum_received"]["bytes"]))')
        c1=$(ticks "$PID")
        mbs=$(awk -v b="$bytes" -v d="$dur" 'BEGIN {printf "%.0f", b / d / 1e6}')
        cpu=$(awk -v c=$((c1 - c0)) -v t="$tck" -v b="$bytes" 'BEGIN {printf "%.1f", c / t * 1e6 / (b / 1e6)}')
        # t2: a new connection per request.
        taskset -c 1 wrk -t1 -c64 -d2s -H 'Connection: close' http://127.0.0.1:8091/ >/dev/null 2>&1 || true
        c0=$(ticks "$PID")
        n=$(taskset -c 1 wrk -t1 -c64 -d"${dur}s" -H 'Connection: close' http://127.0.0.1:8091/ |
            awk '/requests in/ {print $1}')
        c1=$(ticks "$PID")
        cps=$(awk -v n="$n" -v d="$dur" 'BEGIN {printf "%.0f", n / d}')
        cpc=$(awk -v c=$((c1 - c0)) -v t="$tck" -v n="$n" 'BEGIN {printf "%.1f", c / t * 1e6 / n}')
        kill "$PID"
        wait "$PID" 2>/dev/null || true
        echo "round $r $t: t1 $mbs MB/s, $cpu µs CPU/MB; t2 $cps conn/s, $cpc µs CPU/conn"
        t1_mbs[$t]+="$mbs " t1_cpu[$t]+="$cpu " t2_cps[$t]+="$cps " t2_cpu[$t]+="$cpc "
    done
done
echo
echo "| target | t1 MB/s | t1 µs CPU per MB | t2 connections/s | t2 µs CPU per connection |"
echo "|---|---|---|---|---|"
for t in "${targets[@]}"; do
    echo "| $t | $(median <<<"${t1_mbs[$t]}") | $(median <<<"${t1_cpu[$t]}") | $(median <<<"${t2_cps[$t]}") | $(median <<<"${t2_cpu[$t]}") |"
done
