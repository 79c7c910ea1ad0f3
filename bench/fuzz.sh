#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (cargo-fuzz, libFuzzer) for a set time, one after the other,
# under `nice -n 19`, and minimises each corpus afterwards. Crashes, hangs (-timeout) and
# allocations past -rss_limit_mb / -malloc_limit_mb are written to fuzz/artifacts/<target>/;
# copy each into fuzz/regressions/<target>/ once fixed, so that `cargo test` replays it
# (bams3-ffi/tests/fuzz_regressions.rs). A log line per target gives runs and coverage.
#
#   bench/fuzz.sh                         # every target, FUZZ_SECONDS each
#   bench/fuzz.sh chunk rans              # only these
#
# Env knobs: FUZZ_SECONDS=600 (per target), FUZZ_RSS_MB=2048, FUZZ_TIMEOUT=10 (s per input),
#   FUZZ_MAX_LEN=65536 (bytes per input), FUZZ_JOBS=1 (libFuzzer -fork workers per target).
# Needs cargo-fuzz (installed from crates.io when missing) and, on a stable toolchain,
# RUSTC_BOOTSTRAP=1 for the -Z flags cargo-fuzz passes (set here). Builds without sanitizers
# (-s none): the code under test is safe Rust, and what is sought is panics, hangs and
# unbounded allocations. Exit status 1 when a target found something.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SECS=${FUZZ_SECONDS:-600}
RSS=${FUZZ_RSS_MB:-2048}
TIMEOUT=${FUZZ_TIMEOUT:-10}
MAX_LEN=${FUZZ_MAX_LEN:-65536}
JOBS=${FUZZ_JOBS:-1}
export RUSTC_BOOTSTRAP=1
log() { printf '[fuzz %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

cd "$ROOT"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
nice -n 19 cargo fuzz build -s none >&2

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# An empty corpus starts from seeds made of real objects (fuzz/src/targets.rs: seeds).
for t in "${targets[@]}"; do
    if [ -z "$(ls -A "fuzz/corpus/$t" 2>/dev/null)" ]; then
        log "seeding fuzz/corpus"
        BAMS3_FUZZ_SEEDS="$ROOT/fuzz/corpus" nice -n 19 cargo test --release -q -p bams3-ffi \
            --test fuzz_regressions -- write_seed_corpus >&2
        break
    fi
done

found=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    before=$(ls "fuzz/artifacts/$t" | wc -l)
    log "$t: ${SECS} s"
    out="fuzz/artifacts/$t.log"
    status=0
    parallel=()
    [ "$JOBS" -le 1 ] || parallel=(-fork="$JOBS")
    nice -n 19 cargo fuzz run -s none "$t" "fuzz/corpus/$t" -- \
        -max_total_time="$SECS" -rss_limit_mb="$RSS" -malloc_limit_mb="$RSS" \
        -timeout="$TIMEOUT" -max_len="$MAX_LEN" "${parallel[@]}" \
        -print_final_stats=1 > "$out" 2>&1 || status=$?
    stats=$(grep -E '^(#[0-9]+.*(DONE|cov:))|stat::number_of_executed_units' "$out" | tail -2 | tr '\n' ' ')
    log "$t: exit $status; $stats"
    after=$(ls "fuzz/artifacts/$t" | wc -l)
    if [ "$status" -ne 0 ] || [ "$after" -gt "$before" ]; then
        found+=("$t")
        log "$t: FOUND an input: see $out and fuzz/artifacts/$t/"
        continue
    fi
    # Keep the corpus small enough to commit: only inputs that add coverage.
    nice -n 19 cargo fuzz cmin -s none "$t" "fuzz/corpus/$t" -- -rss_limit_mb="$RSS" \
        -timeout="$TIMEOUT" > "fuzz/artifacts/$t.cmin.log" 2>&1 || log "$t: cmin failed (corpus kept)"
    log "$t: corpus $(ls "fuzz/corpus/$t" | wc -l) files, $(du -sh "fuzz/corpus/$t" | cut -f1)"
done
if [ ${#found[@]} -gt 0 ]; then
    log "targets that found crashes, hangs or oversized allocations: ${found[*]}"
    exit 1
fi
log "no crash, hang or oversized allocation in ${#targets[@]} targets (${SECS} s each)"
