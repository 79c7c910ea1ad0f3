#!/usr/bin/env bash
# The archive profile against CRAM 3.1, side by side in one run (issue 16): sizes (BAM, CRAM
# 3.0/3.1 with and without the reference, BAMS3 default and archive, per stream), convert wall
# time (bams3 convert --profile archive vs samtools writing CRAM 3.1), and 100 kb region queries
# (bams3 query on the archive dataset vs samtools view on the BAM + BAI and on the CRAM 3.1).
# Inputs: the benchmark input (bench/build-input.sh) and the real test BAMs human_mouse_smaller
# (RNA-seq) and na12878-chrM-Y-trunc (NA12878), whose references are not in the test data (so
# their CRAMs are no_ref). Every dataset's records are checked first: bams3 query of the whole
# archive dataset equals samtools view of its BAM, and each region query equals samtools view.
# Prints markdown tables (medians of BENCH_RUNS runs) for docs/BENCHMARKS.md.
#
#   bench/archive.sh                  # from the repository root
#
# Env knobs (as bench/cram.sh): BENCH_RUNS=3, BAMS3=target/release/bams3, BAMS3_BENCH_DIR,
#   BAMS3_TEST_DATA, BENCH_THREADS=2, BENCH_TMP, BENCH_STALL=60, BENCH_TIMEOUT=600.
# Exit status 1 when a command failed or records differ.
set -euo pipefail
RUNS=${BENCH_RUNS:-3}
BAMS3=${BAMS3:-target/release/bams3}
DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
DATA=${BAMS3_TEST_DATA:-$HOME/.cache/bams3/test-data}
T=${BENCH_THREADS:-2}
STALL=${BENCH_STALL:-60}
TIMEOUT=${BENCH_TIMEOUT:-600}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=archive
[ "$RUNS" -ge 1 ] || { echo "BENCH_RUNS must be >= 1" >&2; exit 2; }
[ -s "$DATA/human_mouse_smaller.bam" ] || "$HERE/../tests/fetch-data.sh"
[ -s "$DIR/sorted.bam" ] || "$HERE/build-input.sh"
[ -x "$BAMS3" ] || { echo "$BAMS3 not found: cargo build --release" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time missing (apt-get install time)" >&2; exit 2; }
TMP=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/bams3-archive.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
export REF_PATH=$TMP/no-refs REF_CACHE=$TMP/no-refs/%s
size() { du -sb "$1" | cut -f1; }

# CASES: name|BAM|reference FASTA or "-"
CASES=("bench|$DIR/sorted.bam|$DIR/ref.fa" "rnaseq|$DATA/human_mouse_smaller.bam|-" "na12878|$DATA/na12878-chrM-Y-trunc.bam|-")
declare -A SZ
for c in "${CASES[@]}"; do
    IFS='|' read -r name bam ref <<<"$c"
    cat "$bam" > /dev/null
    SZ[$name.bam]=$(size "$bam")
    for v in 3.0 3.1; do
        samtools view -@"$T" --no-PG -C --output-fmt-option version=$v --output-fmt-option no_ref=1 \
            -o "$TMP/$name.$v.noref.cram" "$bam" 2>/dev/null
        SZ[$name.$v.noref]=$(size "$TMP/$name.$v.noref.cram")
        if [ "$ref" != - ]; then
            samtools view -@"$T" --no-PG -C --output-fmt-option version=$v -T "$ref" -o "$TMP/$name.$v.ref.cram" "$bam" 2>/dev/null
            SZ[$name.$v.ref]=$(size "$TMP/$name.$v.ref.cram")
        fi
    done
    samtools index "$TMP/$name.3.1.noref.cram"
    for p in default archive; do
        log "$name: convert --profile $p"
        "$BAMS3" convert -@"$T" --quiet --profile $p "$bam" "$TMP/$name.$p.bams3"
        SZ[$name.$p]=$(size "$TMP/$name.$p.bams3")
        cmp -s <("$BAMS3" query "$TMP/$name.$p.bams3" | md5sum) <(samtools view --no-PG "$bam" | md5sum) ||
            fail "$name: the $p dataset's records differ from samtools view of the BAM"
    done
    python3 "$HERE/stream-share.py" "$TMP/$name.archive.bams3" > "$TMP/$name.share"
done

# Convert: bams3 --profile archive vs samtools writing CRAM 3.1 without the reference (the
# archive profile needs none), on the benchmark input.
bam="$DIR/sorted.bam"
for i in $(seq "$RUNS"); do
    log "convert run $i/$RUNS"
    rm -rf "$TMP/conv.bams3"
    run_timed conv_b3 "$BAMS3" convert -@"$T" --quiet --profile archive "$bam" "$TMP/conv.bams3"
    rm -f "$TMP/conv.cram"
    run_timed conv_cram samtools view -@"$T" --no-PG -C --output-fmt-option version=3.1 --output-fmt-option no_ref=1 -o "$TMP/conv.cram" "$bam"
done
rm -rf "$TMP/conv.bams3" "$TMP/conv.cram"

# Region queries of 100 kb on the benchmark input: archive dataset, BAM + BAI, CRAM 3.1 + CRAI.
CHR=$(samtools view -H "$bam" | awk -F'\t' '$1 == "@SQ" {sub("SN:", "", $2); print $2; exit}')
REGIONS=()
for m in 10 20 30 40 50; do REGIONS+=("$CHR:${m}000001-${m}100000"); done
for r in "${REGIONS[@]}"; do
    samtools view "$bam" "$r" > "$TMP/want.sam"
    "$BAMS3" query "$TMP/bench.archive.bams3" "$r" > "$TMP/got.sam"
    cmp -s "$TMP/want.sam" "$TMP/got.sam" || fail "query $r on the archive dataset differs from samtools view"
done
for i in $(seq "$RUNS"); do
    log "region queries run $i/$RUNS"
    for k in "${!REGIONS[@]}"; do
        r=${REGIONS[$k]}
        run_timed "q_b3_$k" sh -c "\"$BAMS3\" query \"$TMP/bench.archive.bams3\" \"$r\" > /dev/null"
        run_timed "q_bam_$k" sh -c "samtools view \"$bam\" \"$r\" > /dev/null"
        run_timed "q_cram_$k" sh -c "samtools view \"$TMP/bench.3.1.noref.cram\" \"$r\" > /dev/null"
    done
done
sum_q() { local s=0 k; for k in "${!REGIONS[@]}"; do s=$(awk -v a="$s" -v b="$(wall_raw "$1_$k")" 'BEGIN{ if (b == "n/a" || a == "n/a") print "n/a"; else print a + b }'); done; printf '%.3f' "$s"; }

echo "Sizes (du -sb; MB = 10^6 bytes). CRAM written by samtools $(samtools --version | head -n1 | awk '{print $2}') with \`--output-fmt-option version=V\`; no_ref=1 or -T ref.fa."
echo
echo "| input | BAM | CRAM 3.0 ref / no_ref | CRAM 3.1 ref / no_ref | BAMS3 default | BAMS3 archive | archive / CRAM 3.1 no_ref | archive / CRAM 3.1 ref |"
echo "|---|---|---|---|---|---|---|---|"
for c in "${CASES[@]}"; do
    IFS='|' read -r name bam ref <<<"$c"
    r30=${SZ[$name.3.0.ref]:-n/a}; r31=${SZ[$name.3.1.ref]:-n/a}
    echo "| $name ($(basename "$bam")) | $(mb "${SZ[$name.bam]}") | $(mb "$r30") / $(mb "${SZ[$name.3.0.noref]}") | $(mb "$r31") / $(mb "${SZ[$name.3.1.noref]}") | $(mb "${SZ[$name.default]}") | $(mb "${SZ[$name.archive]}") | $(ratio3 "${SZ[$name.archive]}" "${SZ[$name.3.1.noref]}") | $( [ "$r31" = n/a ] && echo — || ratio3 "${SZ[$name.archive]}" "$r31") |"
done
echo
echo "Archive profile per stream, benchmark input (\`bench/stream-share.py\`):"
echo
echo '```'
cat "$TMP/bench.share"
echo
echo '```'
echo
echo "Medians of $RUNS runs, $T threads, benchmark input ($(mb "${SZ[bench.bam]}") BAM)."
echo
echo "| measurement | BAMS3 archive | peer | ratio | target |"
echo "|---|---|---|---|---|"
echo "| convert, wall (vs samtools -C version=3.1 no_ref=1) | $(wall conv_b3) s$(failed_note conv_b3) | $(wall conv_cram) s | $(ratio "$(wall_raw conv_b3)" "$(wall_raw conv_cram)") | ≤ 1.0 |"
echo "| convert, peak RSS | $(rss_mb conv_b3) MiB | $(rss_mb conv_cram) MiB | | |"
qb=$(sum_q q_b3); qm=$(sum_q q_bam); qc=$(sum_q q_cram)
echo "| 100 kb query × ${#REGIONS[@]}, wall summed, vs samtools view BAM | $qb s | $qm s | $(ratio "$qb" "$qm") | ≤ 1.5 |"
echo "| 100 kb query × ${#REGIONS[@]}, wall summed, vs samtools view CRAM 3.1 no_ref | $qb s | $qc s | $(ratio "$qb" "$qc") | < 1.0 |"
echo
[ ${#FAILED[@]} -eq 0 ] || { echo "${#FAILED[@]} check(s) failed" >&2; exit 1; }
echo "All checks passed: every dataset's records equal samtools view of its BAM; ${#REGIONS[@]} region queries on the archive dataset cmp-identical to samtools view."
