#!/usr/bin/env bash
# `npm run build` runs napi build with CARGO pointing here. napi build always passes
# `--target <triple>`; for the host triple that changes nothing but the output directory
# (target/<triple>/ instead of target/), i.e. a second, cold build of every dependency next to
# the workspace's. So: drop the flag for the host, build in the workspace's target/, and link
# the addon where napi looks for it.
set -euo pipefail
host=$(rustc -vV | sed -n 's/^host: //p')
args=()
triple=
while [ $# -gt 0 ]; do
    if [ "$1" = --target ] && [ "${2:-}" = "$host" ]; then
        triple=$2
        shift 2
        continue
    fi
    args+=("$1")
    shift
done
cargo "${args[@]}"
if [ -n "$triple" ] && [ "${args[0]}" = build ]; then
    dir=${CARGO_BUILD_TARGET_DIR:-${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps | node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).target_directory))')}}
    mkdir -p "$dir/$triple/release"
    ln -f "$dir/release/libbams3_node.so" "$dir/$triple/release/libbams3_node.so"
fi
