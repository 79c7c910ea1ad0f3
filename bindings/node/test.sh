#!/usr/bin/env bash
# The Node binding's tests: installs the dev dependencies, builds the addon with napi-rs
# (reusing the workspace's target/ — no second cold build), checks the committed loader and
# index.d.ts, then runs `node --test test/` (records, stats, depth, writer, errors, the event
# loop, S3 on a loopback moto, tsc, and both installs of the npm tarball).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$HERE"

fail() { echo "bindings/node/test.sh: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
command -v node >/dev/null || fail "node is missing"
command -v cargo >/dev/null || fail "cargo is missing (rustup's Rust 1.94.1 or newer)"
[ -x "$ROOT/target/release/bams3" ] || fail "$ROOT/target/release/bams3 is missing: build the workspace first (cargo build --release)"
[ -x "${BAMS3_MOTO_SERVER:-$HOME/.cache/bams3/moto-venv/bin/moto_server}" ] || fail "moto is missing: run tests/fetch-data.sh"
command -v samtools >/dev/null || fail "samtools is missing: run tests/fetch-data.sh"

# Dev dependencies (@napi-rs/cli, typescript, @types/node) from the committed lock file.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null

# Build into a scratch directory, so that the committed index.js / index.d.ts can be compared
# with what napi generates (test/types.test.js), then put the addon next to them.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bams3-node-test.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/gen" "$WORK/data"
# scripts/cargo-host.sh keeps napi's cargo build in the workspace's target/release (see there).
CARGO="$HERE/scripts/cargo-host.sh" npx napi build --platform --release -o "$WORK/gen" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; fail "napi build failed"; }
for f in "$WORK/gen/"bams3.*.node; do strip --strip-debug -o "$HERE/$(basename "$f")" "$f"; done

export BAMS3_NODE_TMP="$WORK/data" BAMS3_NODE_GENERATED="$WORK/gen"
# The from-source install builds the tarball's own sources (its own path, so bams3-core and
# the addon are compiled again from them) in the workspace's target directory, where the
# registry crates are already built: without this it is a second cold build of the AWS SDK.
export BAMS3_NODE_SOURCE_TARGET="${BAMS3_NODE_SOURCE_TARGET:-$ROOT/target}"
set +e
node --test --test-reporter=tap test/*.test.js 2>&1 | tee "$WORK/tap.txt"
status=${PIPESTATUS[0]}
set -e
pass=$(awk '/^# pass / {print $3}' "$WORK/tap.txt" | tail -n1)
failed=$(awk '/^# fail / {print $3}' "$WORK/tap.txt" | tail -n1)
pass=${pass:-0}
failed=${failed:-0}
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
