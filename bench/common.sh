# Shared by the bench/ scripts (sourced): waiting for a port, the origin
# nginx of ../shared/bench, HAProxy's config, the median of a list.

wait_port() { # PORT [SECONDS, default 10]
    local tries=$((${2:-10} * 10))
    for _ in $(seq 1 "$tries"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# The median of numbers separated by spaces on standard input.
median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# Starts the harness's origin nginx on CPU 1 (its config is written by
# ../shared/bench/run.sh), adds its PID to the caller's `pids` array and
# waits for its port. Exits the script when it cannot.
start_origin() {
    local conf=/tmp/bench-origin/nginx.conf
    [ -f "$conf" ] || { echo "no $conf: run ../shared/bench/run.sh once first" >&2; exit 2; }
    taskset -c 1 nginx -c "$conf" -g 'daemon off;' &
    pids+=("$!")
    wait_port 9101 || { echo "origin did not start" >&2; exit 1; }
}

# Writes to FILE the HAProxy config the comparisons run (the harness's:
# one thread, keep-alive both ways, round robin over the three origins).
haproxy_cfg() {
    cat >"$1" <<CFG
global
    nbthread 1
    maxconn 9000
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend fe
    bind 127.0.0.1:8080
    default_backend be
backend be
    balance roundrobin
    server o1 127.0.0.1:9101
    server o2 127.0.0.1:9102
    server o3 127.0.0.1:9103
CFG
}
