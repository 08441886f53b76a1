#!/usr/bin/env bash
# The cost of a rate limit per request: no rule, a local rate limit, and a
# cluster-scope one counted in Redis (one GCRA script call per request).
# Same topology as ../shared/bench: rampart on CPU 0 with one worker
# (bench/ours.sh), the origin nginx, redis-server and wrk on CPU 1. Run
# ../shared/bench/run.sh once first (origin config and tools).
#
#   bench/cluster.sh [ROUNDS]      (CLUSTER_SECONDS=6 per measure; RAMPART_BIN)
#
# Prints per run and as medians: requests/s, rampart's CPU µs per request,
# and redis-server's CPU µs per request.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=${1:-3} dur=${CLUSTER_SECONDS:-6}
conf=/tmp/bench-origin/nginx.conf
[ -f "$conf" ] || { echo "no $conf: run ../shared/bench/run.sh once first" >&2; exit 2; }
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
tck=$(getconf CLK_TCK)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c 1 nginx -c "$conf" -g 'daemon off;' &
pids+=($!)
taskset -c 1 redis-server --bind 127.0.0.1 --port 6390 --save "" --appendonly no >/dev/null 2>&1 &
redis=$!
pids+=("$redis")
wait_port 9101 && wait_port 6390 || { echo "origin or redis did not start" >&2; exit 1; }

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A rps cpu rcpu
variants=(none local cluster)
for r in $(seq 1 "$rounds"); do
    for v in "${variants[@]}"; do
        work=$(mktemp -d)
        limit=$v
        [ "$v" = none ] && limit=
        BENCH_WORKDIR=$work RAMPART_BENCH_LIMIT=$limit taskset -c 0 bash "$root/bench/ours.sh" >"$work/out.log" 2>&1 &
        pid=$!
        pids+=("$pid")
        wait_port 8080 || { echo "rampart did not start: $(cat "$work/out.log")" >&2; exit 1; }
        sleep 1 # the cluster connection
        taskset -c 1 wrk -t1 -c64 -d2s http://127.0.0.1:8080/ >/dev/null
        c0=$(ticks "$pid") r0=$(ticks "$redis")
        out=$(taskset -c 1 wrk -t1 -c64 -d"${dur}s" http://127.0.0.1:8080/)
        c1=$(ticks "$pid") r1=$(ticks "$redis")
        n=$(awk '/requests in/ {print $1}' <<<"$out")
        non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out")
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        rm -rf "$work"
        a=$(awk -v n="$n" -v d="$dur" 'BEGIN {printf "%.0f", n / d}')
        b=$(awk -v c=$((c1 - c0)) -v t="$tck" -v n="$n" 'BEGIN {printf "%.2f", c / t * 1e6 / n}')
        c=$(awk -v c=$((r1 - r0)) -v t="$tck" -v n="$n" 'BEGIN {printf "%.2f", c / t * 1e6 / n}')
        echo "round $r $v: $a req/s, rampart $b µs CPU/req, redis $c µs CPU/req${non2xx:+ (non-2xx: $non2xx)}"
        rps[$v]+="$a " cpu[$v]+="$b " rcpu[$v]+="$c "
    done
done
echo
echo "| rule | req/s | rampart µs CPU/req | redis-server µs CPU/req |"
echo "|---|---|---|---|"
for v in "${variants[@]}"; do
    echo "| $v | $(median <<<"${rps[$v]}") | $(median <<<"${cpu[$v]}") | $(median <<<"${rcpu[$v]}") |"
done
