#!/usr/bin/env bash
# Starts rampart in the foreground as the `ours` target of the side-by-side
# benchmark harness, configured from the BENCH_* variables it exports:
#   BENCH_OURS_CMD="bash $PWD/bench/ours.sh" ../shared/bench/run.sh   # from the project root
# One worker thread, no access log, round robin over BENCH_BACKENDS with
# upstream keep-alive; HTTP on BENCH_HTTP_ADDR, HTTPS (h2 + http/1.1) on
# BENCH_HTTPS_ADDR with BENCH_CERT/BENCH_KEY. Set RAMPART_BIN to use another build,
# RAMPART_BENCH_METRICS=off to run without request counters,
# RAMPART_BENCH_RULES=N to add N firewall rules that match nothing (for comparison),
# and RAMPART_BENCH_LIMIT=local|cluster to add a rate limit per client that
# every request passes (cluster: counted in the Redis at RAMPART_BENCH_REDIS,
# default redis://127.0.0.1:6390/0).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${RAMPART_BIN:-$root/target/release/rampart}"
if [ ! -x "$bin" ]; then
    echo "building $bin (cargo build --release)" >&2
    cargo build --release --quiet --manifest-path "$root/Cargo.toml"
fi
work="${BENCH_WORKDIR:-$(mktemp -d)}"
cfg="$work/rampart.toml"
{
    printf '[runtime]\nworkers = 1\nstate_dir = "%s/state"\n\n' "$work"
    printf '[admin]\nenabled = false\n\n'
    if [ "${RAMPART_BENCH_METRICS:-on}" = off ]; then
        printf '[metrics]\nenabled = false\n\n'
    fi
    printf '[[listener]]\nname = "http"\naddress = "%s"\n\n' "${BENCH_HTTP_ADDR:-127.0.0.1:8080}"
    printf '[[listener]]\nname = "https"\naddress = "%s"\nprotocol = "https"\n' "${BENCH_HTTPS_ADDR:-127.0.0.1:8443}"
    if [ -n "${BENCH_CERT:-}" ]; then
        printf '[[listener.certificate]]\ncert = "%s"\nkey = "%s"\n' "$BENCH_CERT" "$BENCH_KEY"
    fi
    printf '\n[[pool]]\nname = "origin"\nalgorithm = "round_robin"\n'
    IFS=, read -r -a backends <<<"${BENCH_BACKENDS:-127.0.0.1:9101,127.0.0.1:9102,127.0.0.1:9103}"
    for b in "${backends[@]}"; do
        printf '[[pool.server]]\naddress = "%s"\n' "$b"
    done
    printf '\n[[route]]\npool = "origin"\n'
    case "${RAMPART_BENCH_LIMIT:-}" in
        local | cluster)
            printf '\n[[rule]]\nname = "per-client"\naction = "rate_limit"\nrate = 10000000\nscope = "%s"\n' "$RAMPART_BENCH_LIMIT"
            if [ "$RAMPART_BENCH_LIMIT" = cluster ]; then
                printf '\n[cluster]\nredis = "%s"\n' "${RAMPART_BENCH_REDIS:-redis://127.0.0.1:6390/0}"
            fi
            ;;
    esac
    for i in $(seq 1 "${RAMPART_BENCH_RULES:-0}"); do
        printf '\n[[rule]]\nname = "rule-%s"\naction = "deny"\n[rule.match]\npath_prefix = "/blocked-%s"\n' "$i" "$i"
    done
} >"$cfg"
exec "$bin" --log-level warn --log-format text run -c "$cfg"
