#!/usr/bin/env bash
# samtools through the htslib plugin (bams3:///...) vs samtools on the BAM, in one run.
# Prints a markdown table of medians and ratios (docs/BENCHMARKS.md, "htslib plugin").
#
#   bench/htslib.sh                   # from the repository root, after bench/build-input.sh
#
# Env knobs:
#   BENCH_RUNS=3          repetitions of every timed measurement (median reported; >= 3)
#   BAMS3=target/release/bams3        the converter
#   BAMS3_BENCH_DIR=~/.cache/bams3/bench   input (sorted.bam + .bai, built by bench/build-input.sh)
#   BENCH_TMP=/tmp        scratch directory parent; removed at exit
#   BENCH_CHROM=X         the contig for the region and whole-chromosome queries
#   BENCH_OUT=FILE        also write the table to FILE
#   BENCH_STALL=60 BENCH_TIMEOUT=1200   hang watchdog (bench/lib.sh)
#
# Every samtools command runs in the same scratch working directory: the first run there saves
# the CSI the plugin serves (htslib's cache for remote indexes, docs/HTSLIB.md), as a user's
# repeated queries would. Outputs are checked identical before anything is timed.
set -euo pipefail

RUNS=${BENCH_RUNS:-3}
BAMS3=${BAMS3:-target/release/bams3}
DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
STALL=${BENCH_STALL:-60}
TIMEOUT=${BENCH_TIMEOUT:-1200}
CHR=${BENCH_CHROM:-X}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
LOG_TAG=htslib

[ -s "$DIR/sorted.bam" ] && [ -s "$DIR/sorted.bam.bai" ] || { echo "run bench/build-input.sh first" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time missing (apt-get install time)" >&2; exit 2; }
[ -x "$BAMS3" ] || { echo "BAMS3 binary $BAMS3 not found: cargo build --release -p bams3-cli" >&2; exit 2; }
BAMS3=$(cd "$(dirname "$BAMS3")" && pwd)/$(basename "$BAMS3")
make -C "$ROOT/bindings/htslib" --quiet >/dev/null
export HTS_PATH="$ROOT/bindings/htslib:"

TMP=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/bams3-htslib-bench.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

start_all=$SECONDS
log "converting $DIR/sorted.bam"
"$BAMS3" convert --quiet "$DIR/sorted.bam" "$TMP/ds.bams3"
BAM="$DIR/sorted.bam"
URL="bams3://$TMP/ds.bams3"
mkdir -p "$TMP/cwd"
cd "$TMP/cwd"
cat "$BAM" >/dev/null

REGIONS=()
for m in 10 20 30 40 50; do REGIONS+=("$CHR:${m}000001-${m}100000"); done

# name ARGS (with @IN@): the operations measured.
OPS=("view" "view -c" "depth")
cmd() { # OP IN REGION -> the samtools command line
    case "$1" in
    view) echo samtools view "$2" "$3" ;;
    "view -c") echo samtools view -c "$2" "$3" ;;
    depth) echo samtools depth -r "$3" "$2" ;;
    esac
}

log "output checks"
for r in "${REGIONS[@]}" "$CHR"; do
    for op in "${OPS[@]}"; do
        # shellcheck disable=SC2046
        $(cmd "$op" "$BAM" "$r") >"$TMP/a"
        # shellcheck disable=SC2046
        $(cmd "$op" "$URL" "$r") >"$TMP/b"
        cmp -s "$TMP/a" "$TMP/b" || fail "samtools $op $r: bams3:// output differs from the BAM's"
    done
done
rm -f "$TMP/a" "$TMP/b"

for i in $(seq "$RUNS"); do
    log "run $i/$RUNS"
    for k in "${!REGIONS[@]}"; do
        for op in "${OPS[@]}"; do
            key=${op// /_}
            # shellcheck disable=SC2046
            run_timed "r_${key}_b3_$k" $(cmd "$op" "$URL" "${REGIONS[$k]}") >/dev/null
            # shellcheck disable=SC2046
            run_timed "r_${key}_st_$k" $(cmd "$op" "$BAM" "${REGIONS[$k]}") >/dev/null
        done
    done
    for op in "${OPS[@]}"; do
        key=${op// /_}
        # shellcheck disable=SC2046
        run_timed "c_${key}_b3" $(cmd "$op" "$URL" "$CHR") >/dev/null
        # shellcheck disable=SC2046
        run_timed "c_${key}_st" $(cmd "$op" "$BAM" "$CHR") >/dev/null
    done
done

# Sum of the per-region medians.
sum_regions() { # PREFIX
    local k s=0 w
    for k in "${!REGIONS[@]}"; do
        w=$(wall_raw "$1_$k")
        [ "$w" != n/a ] || { echo n/a; return; }
        s=$(awk -v a="$s" -v b="$w" 'BEGIN{printf "%.4f", a + b}')
    done
    echo "$s"
}

{
    echo "| samtools ... | on \`bams3:///\` (s) | on the BAM (s) | ratio | target | met |"
    echo "|---|---:|---:|---:|---:|:-:|"
    for op in "${OPS[@]}"; do
        key=${op// /_}
        b=$(sum_regions "r_${key}_b3")
        s=$(sum_regions "r_${key}_st")
        x=$(ratio "$b" "$s")
        printf '| `%s`, 5 regions of 100 kb | %.3f | %.3f | %s | 1.5 | %s |\n' "$op" "$b" "$s" "$x" "$(verdict "$x" "<=" 1.5)"
    done
    for op in "${OPS[@]}"; do
        key=${op// /_}
        b=$(wall_raw "c_${key}_b3")
        s=$(wall_raw "c_${key}_st")
        x=$(ratio "$b" "$s")
        printf '| `%s %s` (whole chromosome) | %.2f | %.2f | %s | 1.3 | %s |\n' "$op" "$CHR" "$b" "$s" "$x" "$(verdict "$x" "<=" 1.3)"
    done
} | tee "$TMP/table.md"
[ -z "${BENCH_OUT:-}" ] || cp "$TMP/table.md" "$BENCH_OUT"
log "done in $((SECONDS - start_all)) s; $RUNS runs; $(nproc) cores; $(samtools --version | head -n1)"
if [ "${#FAILED[@]}" -gt 0 ]; then
    printf 'FAILED: %s\n' "${FAILED[@]}" >&2
    exit 1
fi
