#!/usr/bin/env bash
# A/B comparison of two rampart builds: CPU time per request under the same
# load, the two builds alternated round by round so that the host's slow and
# fast phases fall on both alike. Same topology as ../shared/bench (rampart
# pinned to CPU 0 with one worker through bench/ours.sh; the origin nginx and
# the load generator on CPU 1); run ../shared/bench/run.sh once first, for
# the origin's config in /tmp/bench-origin and the tools.
#
#   bench/ab.sh A_BIN B_BIN [s1|s4] [ROUNDS]      (AB_SECONDS=6 per measure)
#
# s1: wrk -t1 -c64 over HTTP/1.1; s4: h2load -t1 -c32 -m10 over TLS (h2).
# Prints one line per run and the median of each build: µs of rampart CPU
# per request (user+system, and user alone), from /proc/PID/stat.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
a=$1 b=$2 scen=${3:-s1} rounds=${4:-5} dur=${AB_SECONDS:-6}
conf=/tmp/bench-origin/nginx.conf
[ -f "$conf" ] || { echo "no $conf: run ../shared/bench/run.sh once first" >&2; exit 2; }
tck=$(getconf CLK_TCK)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c 1 nginx -c "$conf" -g 'daemon off;' &
origin=$!
pids+=("$origin")

# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
wait_port 9101 || { echo "origin did not start" >&2; exit 1; }

cpu_ticks() { # PID -> "user system"
    awk '{print $14, $15}' "/proc/$1/stat"
}

load() { # SECONDS -> requests done
    if [ "$scen" = s4 ]; then
        taskset -c 1 timeout $(($1 + 20)) h2load -t1 -c32 -m10 -D "$1" https://127.0.0.1:8443/ 2>/dev/null |
            awk '/^requests:/ {print $8}'
    else
        taskset -c 1 timeout $(($1 + 20)) wrk -t1 -c64 -d"$1"s http://127.0.0.1:8080/ |
            awk '/requests in/ {print $1}'
    fi
}

declare -A total user
for r in $(seq 1 "$rounds"); do
    for which in A B; do
        bin=$a
        [ "$which" = B ] && bin=$b
        work=$(mktemp -d)
        BENCH_WORKDIR=$work RAMPART_BIN=$bin taskset -c 0 bash "$root/bench/ours.sh" >"$work/out.log" 2>&1 &
        pid=$!
        pids+=("$pid")
        wait_port 8080 && wait_port 8443 || { echo "rampart ($which) did not start" >&2; exit 1; }
        load 2 >/dev/null # warm-up
        read -r u0 s0 < <(cpu_ticks "$pid")
        n=$(load "$dur")
        read -r u1 s1 < <(cpu_ticks "$pid")
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        rm -rf "$work"
        t=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$n" -v k="$tck" 'BEGIN {printf "%.2f", (u + s) * 1e6 / k / n}')
        us=$(awk -v u=$((u1 - u0)) -v n="$n" -v k="$tck" 'BEGIN {printf "%.2f", u * 1e6 / k / n}')
        total[$which]+="$t "
        user[$which]+="$us "
        echo "round $r $which: $n requests in ${dur}s, $t µs CPU/req, of which user $us"
    done
done
for which in A B; do
    echo "$which ($scen): median $(echo "${total[$which]}" | median) µs CPU/req, user $(echo "${user[$which]}" | median)"
done
