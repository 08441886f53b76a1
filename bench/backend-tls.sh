#!/usr/bin/env bash
# The cost of TLS to the backends: the s1 load (wrk -t1 -c64, HTTP/1.1
# keep-alive to rampart on :8080), or with FRONT=https the s2 load (the same
# over TLS to rampart on :8443), through a pool of plaintext origins and
# through a pool of the same origins behind TLS ([pool.tls] with a CA file),
# the two alternated round by round. Same topology as ../shared/bench:
# rampart on CPU 0 with one worker; nginx (plaintext on 9101-9103, TLS on
# 9111-9113, certificate from a throwaway CA) and wrk on CPU 1.
#
#   [FRONT=https] bench/backend-tls.sh [ROUNDS] [RAMPART_BIN]   (SECONDS_PER_RUN=6 per measure)
#
# Prints µs of rampart CPU per request (user+system, and user alone) per run
# and the median of each; the origins' TLS connections are kept alive, so
# the difference is the per-request cost of encrypting and decrypting, plus
# the handshakes of the first requests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds=${1:-3}
bin=${2:-$root/target/release/rampart}
dur=${SECONDS_PER_RUN:-6}
front=${FRONT:-http}
tck=$(getconf CLK_TCK)
# shellcheck source=bench/common.sh
. "$root/bench/common.sh"
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# A throwaway CA and a certificate for 127.0.0.1 it signed.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$work/leaf.key" -out "$work/leaf.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$work/ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 2 \
    -extfile "$work/ext" -out "$work/leaf.pem" 2>/dev/null

mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
{
    printf 'worker_processes 1;\nworker_rlimit_nofile 20000;\npid %s/nginx/nginx.pid;\n' "$work"
    printf 'error_log %s/nginx/logs/error.log warn;\nevents { worker_connections 16384; }\n' "$work"
    printf 'http {\n access_log off;\n keepalive_timeout 300s;\n keepalive_requests 1000000;\n'
    printf ' client_body_temp_path %s/nginx/tmp;\n' "$work"
    for p in 9101 9102 9103; do
        printf ' server { listen 127.0.0.1:%s backlog=4096; location / { return 200 "origin %s %s\\n"; } }\n' \
            "$p" "$p" "$(printf '.%.0s' $(seq 1 87))"
    done
    for p in 9111 9112 9113; do
        printf ' server { listen 127.0.0.1:%s ssl backlog=4096; ssl_certificate %s; ssl_certificate_key %s;' \
            "$p" "$work/leaf.pem" "$work/leaf.key"
        printf ' location / { return 200 "origin %s %s\\n"; } }\n' "$p" "$(printf '.%.0s' $(seq 1 87))"
    done
    printf '}\n'
} >"$work/nginx/nginx.conf"
taskset -c 1 nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=("$!")
wait_port 9101 && wait_port 9111 || { echo "origin did not start" >&2; exit 1; }

config() { # plain|tls -> rampart config
    printf '[runtime]\nworkers = 1\nstate_dir = "%s/state"\n[admin]\nenabled = false\n' "$work"
    printf '[[listener]]\nname = "http"\naddress = "127.0.0.1:8080"\n'
    printf '[[listener]]\nname = "https"\naddress = "127.0.0.1:8443"\nprotocol = "https"\nhttp2 = false\n'
    printf '[[pool]]\nname = "origin"\n'
    if [ "$1" = tls ]; then
        printf '[pool.tls]\nca = "%s/ca.pem"\n' "$work"
        for p in 9111 9112 9113; do printf '[[pool.server]]\naddress = "127.0.0.1:%s"\n' "$p"; done
    else
        for p in 9101 9102 9103; do printf '[[pool.server]]\naddress = "127.0.0.1:%s"\n' "$p"; done
    fi
    printf '[[route]]\npool = "origin"\n'
}
config plain >"$work/plain.toml"
config tls >"$work/tls.toml"

load() { # SECONDS -> requests done
    local url=http://127.0.0.1:8080/
    [ "$front" = https ] && url=https://127.0.0.1:8443/
    taskset -c 1 timeout $(($1 + 20)) wrk -t1 -c64 -d"$1"s "$url" | awk '/requests in/ {print $1}'
}

declare -A total user
for r in $(seq 1 "$rounds"); do
    for which in plain tls; do
        taskset -c 0 "$bin" --log-level warn run -c "$work/$which.toml" >"$work/$which.log" 2>&1 &
        pid=$!
        pids+=("$pid")
        wait_port 8080 && wait_port 8443 || { echo "rampart ($which) did not start" >&2; exit 1; }
        load 2 >/dev/null # warm-up (and the TLS handshakes)
        read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
        n=$(load "$dur")
        read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        t=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$n" -v k="$tck" 'BEGIN {printf "%.2f", (u + s) * 1e6 / k / n}')
        us=$(awk -v u=$((u1 - u0)) -v n="$n" -v k="$tck" 'BEGIN {printf "%.2f", u * 1e6 / k / n}')
        total[$which]+="$t "
        user[$which]+="$us "
        echo "round $r $which: $n requests in ${dur}s, $t µs CPU/req, of which user $us"
    done
done
for which in plain tls; do
    echo "$front front, $which backends: median $(echo "${total[$which]}" | median) µs CPU/req, user $(echo "${user[$which]}" | median)"
done
