#!/usr/bin/env bash
# bams3 convert of CRAM vs samtools view -@T -b of the same CRAM, side by side in one run:
# the real human_mouse_smaller.bam (248,661 STAR reads; its reference is not in the test data,
# so written with no_ref) as CRAM 3.0 and 3.1, and, when bench/build-input.sh has made it, the
# benchmark input (~/.cache/bams3/bench/sorted.bam) as CRAM 3.0 against its ref.fa.
# Records are checked first: samtools view of the dataset's export equals samtools view of
# the CRAM. Prints a markdown table (medians of BENCH_RUNS runs) for docs/BENCHMARKS.md.
#
#   bench/cram.sh                     # from the repository root
#
# Env knobs (as bench/flagstat.sh): BENCH_RUNS=5, BAMS3=target/release/bams3, BAMS3_BENCH_DIR,
#   BAMS3_TEST_DATA, BENCH_THREADS=2, BENCH_TMP, BENCH_STALL=60, BENCH_TIMEOUT=600.
# Exit status 1 when a command failed or the records differ.
set -euo pipefail
RUNS=${BENCH_RUNS:-5}
BAMS3=${BAMS3:-target/release/bams3}
DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
DATA=${BAMS3_TEST_DATA:-$HOME/.cache/bams3/test-data}
T=${BENCH_THREADS:-2}
STALL=${BENCH_STALL:-60}
TIMEOUT=${BENCH_TIMEOUT:-600}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=cram
[ "$RUNS" -ge 1 ] || { echo "BENCH_RUNS must be >= 1" >&2; exit 2; }
[ -s "$DATA/human_mouse_smaller.bam" ] || "$HERE/../tests/fetch-data.sh"
[ -x "$BAMS3" ] || { echo "$BAMS3 not found: cargo build --release -p bams3-cli" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time missing (apt-get install time)" >&2; exit 2; }
TMP=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/bams3-cram.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
# References only from what is given here, never from the network.
export REF_PATH=$TMP/no-refs REF_CACHE=$TMP/no-refs/%s

# CASES: name|input BAM|CRAM version|reference FASTA or "-" (no_ref)
CASES=("real-3.0|$DATA/human_mouse_smaller.bam|3.0|-" "real-3.1|$DATA/human_mouse_smaller.bam|3.1|-")
if [ -s "$DIR/sorted.bam" ] && [ -s "$DIR/ref.fa" ]; then
    CASES+=("bench-3.0|$DIR/sorted.bam|3.0|$DIR/ref.fa")
fi
for c in "${CASES[@]}"; do
    IFS='|' read -r name bam version ref <<<"$c"
    # wr: how samtools writes the CRAM; rd: how samtools reads it; cref: how bams3 reads it.
    if [ "$ref" = - ]; then wr=(--output-fmt-option no_ref=1); rd=(); cref=(); else wr=(-T "$ref"); rd=(-T "$ref"); cref=(--reference "$ref"); fi
    log "$name: writing CRAM $version of $bam"
    samtools view -@"$T" --no-PG -C --output-fmt-option version="$version" "${wr[@]}" -o "$TMP/$name.cram" "$bam" 2>/dev/null
    "$BAMS3" convert -@"$T" --quiet "${cref[@]}" "$TMP/$name.cram" "$TMP/$name.bams3"
    "$BAMS3" export "$TMP/$name.bams3" "$TMP/$name.bam"
    cmp -s <(samtools view --no-PG "${rd[@]}" "$TMP/$name.cram" | md5sum) <(samtools view --no-PG "$TMP/$name.bam" | md5sum) ||
        fail "$name: records of the dataset differ from samtools view of the CRAM"
    rm -rf "$TMP/$name.bams3" "$TMP/$name.bam"
    cat "$TMP/$name.cram" > /dev/null
    for i in $(seq "$RUNS"); do
        log "$name: run $i/$RUNS"
        run_timed "st_$name" samtools view -@"$T" --no-PG -b "${rd[@]}" -o "$TMP/out.bam" "$TMP/$name.cram"
        rm -f "$TMP/out.bam"
        run_timed "b3_$name" "$BAMS3" convert -@"$T" --quiet "${cref[@]}" "$TMP/$name.cram" "$TMP/out.bams3"
        rm -rf "$TMP/out.bams3"
    done
done

echo "Medians of $RUNS runs, $T threads; samtools writes BAM at its default level, bams3 a dataset."
echo
echo "| CRAM | size (MB) | \`samtools view -@$T -b\` (s) | \`bams3 convert -@$T\` (s) | ratio | peak RSS samtools / bams3 (MB) |"
echo "|---|---|---|---|---|---|"
for c in "${CASES[@]}"; do
    IFS='|' read -r name bam version ref <<<"$c"
    echo "| $name ($(basename "$bam"), ${ref##*/}) | $(du -m "$TMP/$name.cram" | cut -f1) | $(wall "st_$name") | $(wall "b3_$name") | $(ratio "$(wall_raw "b3_$name")" "$(wall_raw "st_$name")") | $(rss_mb "st_$name") / $(rss_mb "b3_$name") |"
done
[ ${#FAILED[@]} -eq 0 ] || { echo "${#FAILED[@]} check(s) failed" >&2; exit 1; }
