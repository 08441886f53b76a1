#!/usr/bin/env bash
# Two rampart balancers sharing a floating address with keepalived and
# their configuration through etcd, in network namespaces on one machine
# (documentation addresses only):
#
#   192.0.2.2  lb1   rampart + keepalived + etcd member   (host firewall from [topology])
#   192.0.2.3  lb2   rampart + keepalived + etcd member   (host firewall from [topology])
#   192.0.2.20 etcd3 the third etcd member                (host firewall from [topology])
#   192.0.2.10       the floating address: the site, on whichever lb holds it
#   192.0.2.11-13    web1-web3: rampart's built-in origin on port 8080
#   192.0.2.100      client
#
# The site's configuration ($LAB_DIR/ops/site.toml) is pushed to etcd as a
# fleet revision; each balancer's own file names only etcd, itself and its
# state directory (docs/fleet.md).
#
#   examples/ha/lab.sh up             build it; returns once the site answers on 192.0.2.10
#   examples/ha/lab.sh status         which balancer holds the floating address
#   examples/ha/lab.sh kill-active    stop the rampart of the balancer that holds it
#   examples/ha/lab.sh start NAME     start the rampart of lb1 or lb2 again
#   examples/ha/lab.sh client CMD...  run CMD in the client namespace
#   examples/ha/lab.sh fleet ARGS...  rampart fleet ARGS -c ops/site.toml, run on lb1 (push, status...)
#   examples/ha/lab.sh down           stop everything it started (by PID), remove the namespaces
#
# Needs root, iproute2, nftables, keepalived and etcd-server (Debian packages).
# LAB_DIR (default /tmp/rampart-ha-lab) holds configs, logs and PIDs;
# LAB_PREFIX (default rha) prefixes the namespace names; RAMPART_BIN picks
# the rampart build (default target/debug/rampart, built if missing).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
lab=${LAB_DIR:-/tmp/rampart-ha-lab}
prefix=${LAB_PREFIX:-rha}
bin=${RAMPART_BIN:-$root/target/debug/rampart}
vip=192.0.2.10
declare -A addr=([lb1]=192.0.2.2 [lb2]=192.0.2.3 [etcd3]=192.0.2.20 [web1]=192.0.2.11 [web2]=192.0.2.12 [web3]=192.0.2.13 [client]=192.0.2.100)
hosts=(lb1 lb2 etcd3 web1 web2 web3 client)
members=(lb1 lb2 etcd3)
etcd_urls='"http://192.0.2.2:2379", "http://192.0.2.3:2379", "http://192.0.2.20:2379"'


ns() { echo "$prefix-$1"; }
in_ns() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

wait_for() { # wait_for WHAT SECONDS COMMAND...
    local what=$1 secs=$2; shift 2
    for _ in $(seq $((secs * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "error: $what (logs in $lab)" >&2
    return 1
}

# The site through the floating address, from the client: prints the page's server.
site() { in_ns client curl -fsS --max-time 1 "http://$vip/" | grep -o 'class="server">[^<]*' | cut -d'>' -f2; }

network() {
    local h
    ip netns add "$(ns sw)"
    in_ns sw ip link add br0 type bridge
    in_ns sw ip link set br0 up
    local i=0
    for h in "${hosts[@]}"; do
        ip netns add "$(ns "$h")"
        ip -n "$(ns sw)" link add "p$i" type veth peer name eth0 netns "$(ns "$h")"
        ip -n "$(ns sw)" link set "p$i" master br0 up
        in_ns "$h" ip addr add "${addr[$h]}/24" dev eth0
        in_ns "$h" ip link set eth0 up
        in_ns "$h" ip link set lo up
        i=$((i + 1))
    done
}

topology() {
    cat <<EOF
[topology]
admin_cidr = ["192.0.2.100/32"]
floating_addresses = ["$vip"]

# Two lb hosts: their rulesets let VRRP adverts pass between them, in and
# out. With etcd3, they are the fleet's etcd: 2379 and 2380 between members.
[[topology.host]]
name = "lb1"
addresses = ["192.0.2.2"]
roles = ["lb", "etcd"]

[[topology.host]]
name = "lb2"
addresses = ["192.0.2.3"]
roles = ["lb", "etcd"]

[[topology.host]]
name = "etcd3"
addresses = ["192.0.2.20"]
roles = ["etcd"]
EOF
    local w
    for w in web1 web2 web3; do
        printf '\n[[topology.host]]\nname = "%s"\naddresses = ["%s"]\nroles = ["web"]\nports = [8080]\n' "$w" "${addr[$w]}"
    done
}

# A balancer's own file: etcd, its name, its state.
node_config() { # NAME
    cat <<EOF
[runtime]
state_dir = "$lab/$1/state"

[fleet]
etcd = [$etcd_urls]
node = "$1"
EOF
}

# The site, pushed to etcd as the fleet's revision.
site_config() {
    cat <<EOF
[runtime]
workers = 1

[fleet]
etcd = [$etcd_urls]

[admin]
address = "127.0.0.1:9900"

[timeouts]
# Stop answering ready, then keep serving while keepalived moves the address.
shutdown_delay = "2s"

[[listener]]
name = "site"
address = "0.0.0.0:80"

[[pool]]
name = "web"

[pool.health_check]
interval = "500ms"
timeout = "400ms"
rise = 1
fall = 2

[[pool.server]]
name = "web1"
address = "192.0.2.11:8080"

[[pool.server]]
name = "web2"
address = "192.0.2.12:8080"

[[pool.server]]
name = "web3"
address = "192.0.2.13:8080"

[[route]]
pool = "web"

$(topology)
EOF
}

keepalived_config() { # NAME PRIORITY
    cat <<EOF
global_defs {
    router_id $1
    script_user root
}

vrrp_script rampart_ready {
    script "$lab/ready.sh"
    interval 1
    timeout 1
    fall 1
    rise 2
}

vrrp_instance site {
    # Both start as backup and nopreempt: a balancer that comes back does
    # not take the address back (no second outage).
    state BACKUP
    nopreempt
    interface eth0
    virtual_router_id 51
    priority $2
    advert_int 1
    virtual_ipaddress {
        $vip/24 dev eth0
    }
    track_script {
        rampart_ready
    }
}
EOF
}

start_etcd() { # NAME
    local cluster="lb1=http://192.0.2.2:2380,lb2=http://192.0.2.3:2380,etcd3=http://192.0.2.20:2380"
    local a=${addr[$1]} dir="$lab/$1"
    mkdir -p "$dir"
    (exec ip netns exec "$(ns "$1")" etcd --name "$1" --data-dir "$dir/etcd" \
        --listen-client-urls "http://$a:2379" --advertise-client-urls "http://$a:2379" \
        --listen-peer-urls "http://$a:2380" --initial-advertise-peer-urls "http://$a:2380" \
        --initial-cluster "$cluster" --initial-cluster-state new >>"$dir/etcd.log" 2>&1) &
    echo $! >"$dir/etcd.pid"
}

# etcd answers healthy (a quorum is up), asked from lb1.
etcd_healthy() { in_ns lb1 curl -fsS --max-time 1 http://192.0.2.2:2379/health | grep -q '"health":"true"'; }

start_rampart() { # NAME CONFIG
    local dir="$lab/$1"
    (exec ip netns exec "$(ns "$1")" "$bin" --log-format text run -c "$2" >>"$dir/rampart.log" 2>&1) &
    echo $! >"$dir/rampart.pid"
}

up() {
    [ "$(id -u)" = 0 ] || { echo "error: the lab needs root (network namespaces)" >&2; exit 1; }
    if [ -e "$lab" ]; then
        echo "error: $lab exists: run '$0 down' first" >&2
        exit 1
    fi
    for t in keepalived nft ip curl etcd; do
        command -v "$t" >/dev/null || { echo "error: $t is missing (apt install keepalived nftables iproute2 curl etcd-server)" >&2; exit 1; }
    done
    [ -x "$bin" ] || cargo build --quiet --manifest-path "$root/Cargo.toml"
    mkdir -p "$lab"
    network
    # keepalived's check: is rampart ready (GET /health/ready answers 200)?
    cat >"$lab/ready.sh" <<'EOF'
#!/bin/bash
exec 3<>/dev/tcp/127.0.0.1/9900 || exit 1
printf 'GET /health/ready HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 1 status <&3 && [[ $status == *" 200 "* ]]
EOF
    chmod 700 "$lab/ready.sh"
    for w in web1 web2 web3; do
        mkdir -p "$lab/$w"
        printf '[admin]\nenabled = false\n[runtime]\nstate_dir = "%s"\n[[origin]]\nname = "%s"\naddress = "0.0.0.0:8080"\ndemo = true\n' \
            "$lab/$w/state" "$w" >"$lab/$w/rampart.toml"
        start_rampart "$w" "$lab/$w/rampart.toml"
        topology >"$lab/$w/topology.toml"
        in_ns "$w" "$bin" firewall apply -c "$lab/$w/topology.toml" --host "$w" >"$lab/$w/firewall.log" 2>&1
    done
    # The fleet's etcd: a member on each balancer and one on etcd3, each
    # behind its host firewall; then the site as revision 1.
    mkdir -p "$lab/ops"
    site_config >"$lab/ops/site.toml"
    for m in "${members[@]}"; do
        mkdir -p "$lab/$m"
        in_ns "$m" "$bin" firewall apply -c "$lab/ops/site.toml" --host "$m" >"$lab/$m/firewall.log" 2>&1
        start_etcd "$m"
    done
    wait_for "etcd did not become healthy" 30 etcd_healthy
    in_ns lb1 "$bin" fleet push -c "$lab/ops/site.toml" -m "the lab's site" >"$lab/ops/push.log" 2>&1
    local prio=150
    for lb in lb1 lb2; do
        node_config "$lb" >"$lab/$lb/rampart.toml"
        start_rampart "$lb" "$lab/$lb/rampart.toml"
        keepalived_config "$lb" "$prio" >"$lab/$lb/keepalived.conf"
        (exec ip netns exec "$(ns "$lb")" keepalived --dont-fork --log-console --vrrp \
            -f "$lab/$lb/keepalived.conf" -p "$lab/$lb/keepalived.pid" -r "$lab/$lb/vrrp.pid" \
            >>"$lab/$lb/keepalived.log" 2>&1) &
        echo $! >"$lab/$lb/keepalived.run.pid"
        prio=100
    done
    wait_for "the site on $vip did not answer" 30 site
    echo "the site answers on $vip (held by $(holder)); logs and configs in $lab"
}

holder() {
    for lb in lb1 lb2; do
        if in_ns "$lb" ip -4 addr show dev eth0 | grep -q " $vip/"; then
            echo "$lb"
            return 0
        fi
    done
    echo none
}

status() {
    echo "floating address $vip: $(holder)"
    for lb in lb1 lb2; do
        local r="stopped"
        if [ -f "$lab/$lb/rampart.pid" ] && kill -0 "$(cat "$lab/$lb/rampart.pid")" 2>/dev/null; then r="running"; fi
        echo "$lb (${addr[$lb]}): rampart $r"
    done
}

stop_pid() { # PIDFILE: TERM, then KILL after 10 s
    [ -f "$1" ] || return 0
    local pid
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$1"
}

kill_active() {
    local lb
    lb=$(holder)
    [ "$lb" != none ] || { echo "error: nobody holds $vip" >&2; exit 1; }
    echo "stopping rampart on $lb"
    stop_pid "$lab/$lb/rampart.pid"
}

start() { # NAME
    case ${1:-} in lb1 | lb2) ;; *) echo "usage: $0 start lb1|lb2" >&2; exit 2 ;; esac
    start_rampart "$1" "$lab/$1/rampart.toml"
    echo "started rampart on $1"
}

down() {
    for d in "$lab"/*/; do
        [ -d "$d" ] || continue
        stop_pid "$d/keepalived.run.pid"
        stop_pid "$d/rampart.pid"
        stop_pid "$d/etcd.pid"
    done
    for h in "${hosts[@]}" sw; do
        ip netns del "$(ns "$h")" 2>/dev/null || true
    done
    rm -rf "$lab"
    echo "stopped and removed the lab"
}

case "${1:-}" in
    up) up ;;
    status) status ;;
    kill-active) kill_active ;;
    start) start "${2:-}" ;;
    client) shift; in_ns client "$@" ;;
    fleet) shift; in_ns lb1 "$bin" fleet "$@" -c "$lab/ops/site.toml" ;;
    down) down ;;
    *) sed -n '2,30p' "$0"; exit 2 ;;
esac
