#!/usr/bin/env bash
# Gets a certificate for rampart from Pebble, a small ACME server for
# testing (Debian package `pebble`), on loopback: Pebble's fake DNS sends
# every name to 127.0.0.1, Pebble validates rampart through TLS-ALPN-01,
# and the script prints the certificate rampart then serves, as
# `openssl s_client` shows it. Everything it starts is stopped at the end.
#
#   examples/acme/try-with-pebble.sh            (RAMPART_BIN to use another build)
#
# Ports: Pebble 14000 (ACME) and 15000 (management), its DNS 8053/udp,
# rampart 5001 (HTTPS, where Pebble validates) and 5002 (HTTP).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin=${RAMPART_BIN:-$root/target/debug/rampart}
[ -x "$bin" ] || cargo build --quiet --manifest-path "$root/Cargo.toml"
command -v pebble >/dev/null || { echo "pebble is not installed: apt-get install pebble" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Pebble's own HTTPS certificate, from a throwaway CA rampart makes.
"$bin" ca issue pebble --san localhost --san 127.0.0.1 --state-dir "$work/pebble-ca" >/dev/null
cat >"$work/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
  "certificate": "$work/pebble-ca/tls/issued/pebble.pem", "privateKey": "$work/pebble-ca/tls/issued/pebble-key.pem",
  "httpPort": 5002, "tlsPort": 5001, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
pebble-challtestsrv -dns01 127.0.0.1:8053 -http01 "" -https01 "" -tlsalpn01 "" \
    -management 127.0.0.1:8055 -defaultIPv4 127.0.0.1 -defaultIPv6 "" >"$work/dns.log" 2>&1 &
pids+=("$!")
PEBBLE_VA_NOSLEEP=1 pebble -config "$work/pebble.json" -dnsserver 127.0.0.1:8053 >"$work/pebble.log" 2>&1 &
pids+=("$!")

cat >"$work/rampart.toml" <<TOML
[runtime]
state_dir = "$work/state"
[admin]
enabled = false
[[listener]]
name = "plain"
address = "127.0.0.1:5002"
[[listener]]
name = "site"
address = "127.0.0.1:5001"
protocol = "https"
[listener.acme]
directory = "https://127.0.0.1:14000/dir"
names = ["site.rampart.test"]
email = "ops@rampart.test"
# Pebble's API uses the throwaway CA above; a real CA needs no directory_ca.
directory_ca = "$work/pebble-ca/tls/ca.pem"
[[origin]]
name = "web"
address = "127.0.0.1:0"
demo = true
[[pool]]
name = "web"
[[pool.server]]
origin = "web"
[[route]]
pool = "web"
TOML
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/14000) 2>/dev/null && break; sleep 0.1; done
"$bin" --log-level info run -c "$work/rampart.toml" >"$work/rampart.log" 2>&1 &
pids+=("$!")

# Wait (at most 30 s) until the certificate is issued and stored.
for _ in $(seq 1 300); do
    [ -s "$work/state/acme/site/cert.pem" ] && break
    sleep 0.1
done
if [ ! -s "$work/state/acme/site/cert.pem" ]; then
    echo "no certificate after 30 s; rampart's log:" >&2
    cat "$work/rampart.log" >&2
    exit 1
fi
sleep 0.2
echo "rampart serves, for site.rampart.test:"
openssl s_client -connect 127.0.0.1:5001 -servername site.rampart.test </dev/null 2>/dev/null |
    openssl x509 -noout -subject -issuer -ext subjectAltName
