#!/usr/bin/env bash
# The project's one test command: fetch the test data and oracle tools, then run
# every test of the workspace in release mode (the big round trips need it).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

export BAMS3_TEST_DATA="${BAMS3_TEST_DATA:-${HOME:-/root}/.cache/bams3/test-data}"

"$here/fetch-data.sh"

cd "$root"
start=$(date +%s)
status=0
cargo test --workspace --release --no-fail-fast "$@" || status=$?
echo "tests/run.sh: cargo test took $(($(date +%s) - start)) s (exit $status)" >&2

# The C ABI: C and C++ tests and examples against libbams3.so, under valgrind.
start=$(date +%s)
make -C "$root/bindings" test || status=$?
echo "tests/run.sh: C/C++ binding tests took $(($(date +%s) - start)) s (exit $status)" >&2

# The language bindings and the htslib plugin. Each script installs what it needs (apt
# packages, npm packages) when missing, reuses the release build above, and fails (never
# skips) when a prerequisite cannot be had.
binding_tests() {
    local script="$1" start b_status=0
    start=$(date +%s)
    "$script" || b_status=$?
    [ "$b_status" -eq 0 ] || status=$b_status
    echo "tests/run.sh: $script took $(($(date +%s) - start)) s (exit $b_status)" >&2
}
binding_tests "$root/bindings/node/test.sh"   # node --test, tsc, the npm tarball
binding_tests "$root/bindings/r/test.sh"      # testthat parity with Rsamtools, R CMD check
binding_tests "$root/bindings/htslib/test.sh" # stock samtools on bams3:// URLs
binding_tests "$root/bindings/htsget/test.sh" # bams3 serve: samtools' and GA4GH's htsget clients
binding_tests "$root/workflows/snakemake/test.sh" # convert --shard + finalize via Snakemake on moto (~1 min + pip)
exit "$status"
