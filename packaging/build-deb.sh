#!/usr/bin/env bash
# Builds the Debian package: the binary, then the shell completions and the
# manual page generated from it, then `cargo deb` (metadata in Cargo.toml).
#
#   packaging/build-deb.sh                 release build, package in target/debian/
#   packaging/build-deb.sh --profile dev   package the debug build
#   ... --no-build                         package the binary already built (the tests)
#
# Needs cargo-deb (`cargo install cargo-deb --locked`).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
build=1
while [ $# -gt 0 ]; do
    case $1 in
        --profile) profile=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        *) echo "usage: $0 [--profile PROFILE] [--no-build]" >&2; exit 2 ;;
    esac
done
dir=$([ "$profile" = dev ] && echo debug || echo "$profile")

[ "$build" = 1 ] && cargo build --quiet --locked --profile "$profile"
bin="target/$dir/rampart"
out=target/package-assets
rm -rf "$out" && mkdir -p "$out"
"$bin" completions bash >"$out/rampart.bash"
"$bin" completions zsh >"$out/_rampart"
"$bin" completions fish >"$out/rampart.fish"
# One manual page per command and subcommand (rampart.1 refers to
# rampart-up(1), rampart-ca-issue(1), ...).
"$bin" man --dir "$out/man" >/dev/null
gzip -9n "$out"/man/*.1

# The binary goes stripped (line tables for backtraces stay out of it).
args=(--no-build --locked --profile "$profile" --strip)
# The debug binary is large: compress fast, the package is only inspected.
[ "$profile" = dev ] && args+=(--fast)
cargo deb "${args[@]}"
