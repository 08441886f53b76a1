#!/usr/bin/env bash
# rampart's HTTP/3 against its own HTTP/2 over TLS, with s4's load shape (32 connections x 10
# requests in flight), a fixed request count each: requests per second, CPU per request
# (rampart's user + system time from /proc over the run), and memory per idle connection
# (RSS growth with 1000 connections held open after one request each).
#   bench/h3-vs-h2.sh RAMPART_BIN [REQUESTS]      # from the project root
# Needs: h2load, nginx and the shared harness's origin config (/tmp/bench-origin: run
# ../shared/bench/run.sh once), and `cargo build --release --example h3load`.
# rampart runs with one worker on CPU 0; the origin and the load generators on CPU 1.
set -euo pipefail
bin=${1:?rampart binary}
n=${2:-100000}
h3load=${H3LOAD:-target/release/examples/h3load}
[ -x "$h3load" ] || { echo "no $h3load: cargo build --release --example h3load" >&2; exit 2; }
[ -f /tmp/bench-origin/nginx.conf ] || { echo "no /tmp/bench-origin: run ../shared/bench/run.sh once" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

taskset -c 1 nginx -c /tmp/bench-origin/nginx.conf -g 'daemon off;' &
pids+=("$!")
wait_port 9101
cat >"$work/rampart.toml" <<EOF
[runtime]
workers = 1
state_dir = "$work/state"

[admin]
enabled = false

[[listener]]
name = "https"
address = "127.0.0.1:8443"
protocol = "https"
http3 = true

[[pool]]
name = "origin"
[[pool.server]]
address = "127.0.0.1:9101"

[[route]]
pool = "origin"
EOF
start() {
    taskset -c 0 "$bin" --log-level warn run -c "$work/rampart.toml" &
    rp=$!
    pids+=("$rp")
    wait_port 8443
}
# A fresh process for each idle figure: memory freed by earlier
# connections is not always given back to the system.
restart() {
    kill "$rp"
    wait "$rp" 2>/dev/null || true
    start
}
start
ca="$work/state/tls/ca.pem"
url=https://127.0.0.1:8443/
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$rp/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$rp/status"; }
per_request() { awk -v t="$1" -v n="$n" -v hz="$ticks" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }'; }

# Warm both paths (connections to the origin, lazily built state).
taskset -c 1 h2load -t1 -c4 -m4 -n 2000 "$url" >/dev/null 2>&1
taskset -c 1 "$h3load" -c 4 -m 4 -n 2000 --ca "$ca" "$url" >/dev/null

c0=$(cpu)
h2out=$(taskset -c 1 h2load -t1 -c32 -m10 -n "$n" "$url" 2>&1)
c1=$(cpu)
h2rps=$(printf '%s\n' "$h2out" | awk '/^finished in/ {print $4}')
h2ok=$(printf '%s\n' "$h2out" | awk '/^requests:/ {print $8}')
echo "HTTP/2: $n requests ($h2ok succeeded), $h2rps req/s, $(per_request $((c1 - c0))) µs CPU per request"

c0=$(cpu)
h3out=$(taskset -c 1 "$h3load" -c 32 -m 10 -n "$n" --ca "$ca" "$url")
c1=$(cpu)
echo "HTTP/3: $(printf '%s\n' "$h3out" | head -1), $(per_request $((c1 - c0))) µs CPU per request"

idle() {
    local before after
    before=$(rss)
    taskset -c 1 "$h3load" -c 1000 --idle 15 "$@" --ca "$ca" "$url" >"$work/idle.out" &
    local p=$!
    for _ in $(seq 1 300); do grep -q '^idle:' "$work/idle.out" 2>/dev/null && break; sleep 0.1; done
    after=$(rss)
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
    awk -v b="$before" -v a="$after" -v line="$(cat "$work/idle.out")" \
        'BEGIN { printf "%s; RSS %d -> %d KiB: %.1f KiB per connection\n", line, b, a, (a - b) / 1000 }'
}
restart
echo "HTTP/2 idle: $(idle --h2)"
restart
echo "HTTP/3 idle: $(idle)"
