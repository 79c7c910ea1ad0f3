#!/usr/bin/env bash
# BAMS3 vs samtools, side by side in one run. Prints a markdown table of medians and ratios.
#
#   bench/run.sh                      # from the repository root
#
# Env knobs:
#   BENCH_RUNS=3          repetitions of every timed measurement (median reported; >= 3)
#   BAMS3=target/release/bams3        the binary under test
#   BAMS3_BENCH_DIR=~/.cache/bams3/bench   input cache (built by bench/build-input.sh)
#   BENCH_THREADS=2       -@ for both tools
#   BENCH_MEMORY=256M     --memory for the name-sorted and shuffled conversions
#   BENCH_TMP=/tmp        where the scratch directory (datasets, BAM copies) goes; removed at exit
#   BENCH_CHROM=X         the contig for the region / whole-chromosome / depth queries
#   BENCH_OUT=FILE        also write the table to FILE
#   BENCH_STALL=60        kill a measured command that used no CPU for this many seconds (a hang)
#   BENCH_TIMEOUT=1200    kill a measured command that runs longer than this
#
# Peak RSS comes from /usr/bin/time -f '%M', wall time from bash's $EPOCHREALTIME around it
# (time's %e has only 10 ms resolution). Peak RSS is the maximum over the
# runs, wall time the median. The page cache is warm (inputs are read once before timing).
# The export baseline is the same command as the convert baseline (samtools view -@2 -b of
# sorted.bam), so that measurement is shared.
# Exit status: 0 when every output check passed (the performance targets do not affect it),
# 1 when a measured command failed or hung, or a check failed (region/chromosome query output differs from samtools, depth output
# differs, export record count differs).
set -euo pipefail

RUNS=${BENCH_RUNS:-3}
BAMS3=${BAMS3:-target/release/bams3}
DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
T=${BENCH_THREADS:-2}
MEM=${BENCH_MEMORY:-256M}
STALL=${BENCH_STALL:-60}
TIMEOUT=${BENCH_TIMEOUT:-1200}
CHR=${BENCH_CHROM:-X}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[ "$RUNS" -ge 1 ] || { echo "BENCH_RUNS must be >= 1" >&2; exit 2; }
[ "$RUNS" -ge 3 ] || echo "warning: BENCH_RUNS=$RUNS < 3" >&2

start_all=$SECONDS

"$HERE/build-input.sh"
command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time missing (apt-get install time)" >&2; exit 2; }
[ -x "$BAMS3" ] || { echo "BAMS3 binary $BAMS3 not found: cargo build --release -p bams3-cli" >&2; exit 2; }
BAMS3=$(cd "$(dirname "$BAMS3")" && pwd)/$(basename "$BAMS3")

TMP=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/bams3-bench.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

NREADS=$(awk '{n += $3 + $4} END{print n}' "$DIR/stats.txt")
log "input: $NREADS records; BAMS3=$BAMS3; runs=$RUNS; threads=$T"
"$BAMS3" --version >&2 || true
samtools --version | head -n1 >&2

# warm the page cache
cat "$DIR"/sorted.bam "$DIR"/name.bam "$DIR"/shuffled.bam "$DIR"/ref.fa > /dev/null

# --------------------------------------------------------------------------- convert
INPUTS=(sorted name shuffled)
for i in $(seq "$RUNS"); do
    for inp in "${INPUTS[@]}"; do
        mem_args=()
        [ "$inp" = sorted ] || mem_args=(--memory "$MEM")
        log "convert $inp.bam run $i/$RUNS"
        rm -rf "$TMP/ds_$inp"
        run_timed "conv_b3_$inp" "$BAMS3" convert -@"$T" --quiet "${mem_args[@]}" "$DIR/$inp.bam" "$TMP/ds_$inp"
        rm -f "$TMP/x.bam"
        run_timed "conv_st_$inp" samtools view -@"$T" -b -o "$TMP/x.bam" "$DIR/$inp.bam"
    done
done
rm -f "$TMP/x.bam"
DS=$TMP/ds_sorted

# --------------------------------------------------------------------------- sizes
log "sizes (CRAM files are cached in $DIR/cram)"
BAM_SIZE=$(stat -c %s "$DIR/sorted.bam")
declare -A DS_SIZE
for inp in "${INPUTS[@]}"; do
    if ok "conv_b3_$inp"; then DS_SIZE[$inp]=$(du -sb "$TMP/ds_$inp" | cut -f1); else DS_SIZE[$inp]=n/a; fi
done
mkdir -p "$DIR/cram"
declare -A CRAM_SIZE
SAMTOOLS_V=$(samtools --version | head -n1 | awk '{print $2}')
for v in 3.0 3.1; do
    for mode in ref noref; do
        f="$DIR/cram/sorted.v$v.$mode.samtools-$SAMTOOLS_V.cram"
        if [ ! -s "$f" ]; then
            log "CRAM $v $mode"
            if [ $mode = ref ]; then
                samtools view -@"$T" -C --output-fmt-option version=$v -T "$DIR/ref.fa" -o "$f.tmp" "$DIR/sorted.bam"
            else
                samtools view -@"$T" -C --output-fmt-option version=$v --output-fmt-option no_ref=1 -o "$f.tmp" "$DIR/sorted.bam"
            fi
            mv "$f.tmp" "$f"
        fi
        CRAM_SIZE[$v.$mode]=$(stat -c %s "$f")
    done
done

# --------------------------------------------------------------------------- region queries
REGIONS=()
for m in 10 20 30 40 50; do REGIONS+=("$CHR:${m}000001-${m}100000"); done
log "region query checks"
for r in "${REGIONS[@]}"; do
    "$BAMS3" query "$DS" "$r" > "$TMP/q.b3.sam" || fail "bams3 query $DS $r exited with status $?"
    samtools view "$DIR/sorted.bam" "$r" > "$TMP/q.st.sam"
    if ! cmp -s "$TMP/q.b3.sam" "$TMP/q.st.sam"; then
        fail "bams3 query $r differs from samtools view ($(wc -l < "$TMP/q.b3.sam") vs $(wc -l < "$TMP/q.st.sam") lines)"
        diff "$TMP/q.b3.sam" "$TMP/q.st.sam" | head -n 6 >&2 || true
    fi
    # the datasets converted from name-sorted and shuffled input must answer the same records in
    # the same coordinate order; only records at equal positions may be ordered differently
    # (docs/FORMAT.md, "Determinism")
    for inp in name shuffled; do
        ok "conv_b3_$inp" || continue
        "$BAMS3" query "$TMP/ds_$inp" "$r" > "$TMP/q.b3s.sam" || true
        cmp -s <(sort "$TMP/q.b3.sam") <(sort "$TMP/q.b3s.sam") || fail "query $r: dataset from $inp.bam holds other records than dataset from sorted.bam"
        cmp -s <(cut -f3,4 "$TMP/q.b3.sam") <(cut -f3,4 "$TMP/q.b3s.sam") || fail "query $r: dataset from $inp.bam returns another position order"
    done
done
QLINES=$(for r in "${REGIONS[@]}"; do samtools view -c "$DIR/sorted.bam" "$r"; done | awk '{n+=$1} END{print n}')
for i in $(seq "$RUNS"); do
    log "region queries run $i/$RUNS"
    for k in "${!REGIONS[@]}"; do
        run_timed "q_b3_$k" "$BAMS3" query "$DS" "${REGIONS[$k]}" > /dev/null
        run_timed "q_st_$k" samtools view "$DIR/sorted.bam" "${REGIONS[$k]}" > /dev/null
    done
done
region_rss_mb() { cat "$TMP/$1"_*.rss 2>/dev/null | sort -g | tail -n1 | awk '{printf "%.0f", $1/1024}'; }

# Small regions: 1 kb (a gene's worth) and one base (the fixed cost of a query). Ten of each,
# spread over the chromosome, each checked against samtools before it is timed.
SMALL_1K=(); SMALL_1B=()
for m in 5 12 19 26 33 40 47 54 61 68; do
    SMALL_1K+=("$CHR:${m}050001-${m}051000")
    SMALL_1B+=("$CHR:${m}070001-${m}070001")
done
log "1 kb and one-base region checks"
for r in "${SMALL_1K[@]}" "${SMALL_1B[@]}"; do
    cmp -s <("$BAMS3" query "$DS" "$r") <(samtools view "$DIR/sorted.bam" "$r") || fail "bams3 query $r differs from samtools view"
done
for i in $(seq "$RUNS"); do
    log "small region queries run $i/$RUNS"
    for k in "${!SMALL_1K[@]}"; do
        run_timed "k1_b3_$k" "$BAMS3" query "$DS" "${SMALL_1K[$k]}" > /dev/null
        run_timed "k1_st_$k" samtools view "$DIR/sorted.bam" "${SMALL_1K[$k]}" > /dev/null
        run_timed "b1_b3_$k" "$BAMS3" query "$DS" "${SMALL_1B[$k]}" > /dev/null
        run_timed "b1_st_$k" samtools view "$DIR/sorted.bam" "${SMALL_1B[$k]}" > /dev/null
    done
done
# sum_medians PREFIX N: the medians of PREFIX_0 .. PREFIX_{N-1}, summed.
sum_medians() {
    local k tot=0
    for ((k = 0; k < $2; k++)); do ok "$1_$k" || { echo n/a; return; }; tot=$(awk -v a="$tot" -v b="$(wall_raw "$1_$k")" 'BEGIN{print a+b}'); done
    printf '%.3f' "$tot"
}

# --------------------------------------------------------------------------- whole chromosome
log "whole-chromosome check (md5 of SAM text)"
B3_MD5=$({ "$BAMS3" query "$DS" "$CHR" || echo "bams3 query failed with status $?"; } | md5sum | cut -d' ' -f1)
ST_MD5=$(samtools view "$DIR/sorted.bam" "$CHR" | md5sum | cut -d' ' -f1)
[ "$B3_MD5" = "$ST_MD5" ] || fail "bams3 query $CHR differs from samtools view $CHR (md5 $B3_MD5 vs $ST_MD5)"
for i in $(seq "$RUNS"); do
    log "whole-chromosome query run $i/$RUNS"
    run_timed "chr_b3" "$BAMS3" query "$DS" "$CHR" > /dev/null
    run_timed "chr_st" samtools view "$DIR/sorted.bam" "$CHR" > /dev/null
done

# --------------------------------------------------------------------------- depth
DEPTH_REGION="$CHR:20000001-21000000"
HAVE_DEPTH=0
if "$BAMS3" --help | grep -qE '^\s+depth\b'; then HAVE_DEPTH=1; fi
if [ $HAVE_DEPTH = 1 ]; then
    log "depth check"
    "$BAMS3" depth --report "$DS" "$DEPTH_REGION" > "$TMP/d.b3" 2> "$TMP/d.report" || fail "bams3 depth exited with status $?"
    # "decoded X of Y stored bytes (P%)": the share of the chunk bytes a full query would decode.
    DEPTH_PCT=$(grep -oE '\([0-9.]+%\)' "$TMP/d.report" | tr -d '()%' || echo "?")
    samtools depth -r "$DEPTH_REGION" "$DIR/sorted.bam" > "$TMP/d.st"
    cmp -s "$TMP/d.b3" "$TMP/d.st" || { fail "bams3 depth $DEPTH_REGION differs from samtools depth"; diff "$TMP/d.b3" "$TMP/d.st" | head -n 6 >&2 || true; }
    for i in $(seq "$RUNS"); do
        log "depth run $i/$RUNS"
        run_timed "depth_b3" "$BAMS3" depth "$DS" "$DEPTH_REGION" > /dev/null
        run_timed "depth_st" samtools depth -r "$DEPTH_REGION" "$DIR/sorted.bam" > /dev/null
    done
fi

# --------------------------------------------------------------------------- export
for i in $(seq "$RUNS"); do
    log "export run $i/$RUNS"
    rm -f "$TMP/export.bam"
    run_timed "export_b3" "$BAMS3" export -@"$T" "$DS" "$TMP/export.bam"
done
EXPORT_SIZE=n/a
if ok export_b3; then
    EXPORT_N=$(samtools view -c -@"$T" "$TMP/export.bam")
    [ "$EXPORT_N" = "$NREADS" ] || fail "export wrote $EXPORT_N records, input has $NREADS"
    EXPORT_SIZE=$(stat -c %s "$TMP/export.bam")
fi
rm -f "$TMP/export.bam"

# --------------------------------------------------------------------------- table
table() {
    local wb ws
    echo "Input: $NREADS records (ART HiSeq 2x150 bp, minimap2 -ax sr, 70 Mbp chrX), sorted BAM $(mb "$BAM_SIZE")."
    echo "Medians of $RUNS runs (wall); peak RSS = max over runs. Threads: $T."
    echo
    echo "| measurement | BAMS3 | samtools | ratio BAMS3/samtools | issue-3 target | holds |"
    echo "|---|---|---|---|---|---|"
    for inp in "${INPUTS[@]}"; do
        wb=$(wall "conv_b3_$inp"); ws=$(wall "conv_st_$inp")
        local r; r=$(ratio "$wb" "$ws")
        local tgt="≤ 0.25" v; v=$(verdict "$r" "<=" 0.25)
        [ "$inp" = sorted ] || { tgt="(sorted only)"; v="—"; }
        local cell="${wb} s ($(rate "$NREADS" "$wb")/s)"
        [ "$wb" != n/a ] || cell=""
        echo "| convert $inp.bam, wall (reads/s) | ${cell}$(failed_note "conv_b3_$inp") | ${ws} s ($(rate "$NREADS" "$ws")/s) | $r | $tgt | $v |"
    done
    for inp in "${INPUTS[@]}"; do
        local budget_s=512M
        [ "$inp" = sorted ] || budget_s=$MEM
        local budget_mb; budget_mb=$(( $(to_bytes "$budget_s") / 1048576 ))
        local rb rs; rb=$(rss_mb "conv_b3_$inp"); rs=$(rss_mb "conv_st_$inp")
        local rr; rr=$(ratio "$rb" "$budget_mb")
        local rcell="$rb MiB = $rr × budget"
        [ "$rb" != n/a ] || rcell=""
        echo "| convert $inp.bam, peak RSS (budget --memory $budget_s) | ${rcell}$(failed_note "conv_b3_$inp") | $rs MiB | — | ≤ 1.10 × budget | $(verdict "$rr" "<=" 1.10) |"
    done
    local rsz; rsz=$(ratio3 "${DS_SIZE[sorted]}" "$BAM_SIZE")
    echo "| size: dataset (du -sb) vs sorted BAM | $(mb "${DS_SIZE[sorted]}") | BAM $(mb "$BAM_SIZE") | $rsz | ≤ 0.68 | $(verdict "$rsz" "<=" 0.68) |"
    echo "| size: datasets from name.bam / shuffled.bam | $(mb "${DS_SIZE[name]}") / $(mb "${DS_SIZE[shuffled]}") | | $(ratio3 "${DS_SIZE[name]}" "$BAM_SIZE") / $(ratio3 "${DS_SIZE[shuffled]}" "$BAM_SIZE") | (info) | |"
    for v in 3.0 3.1; do
        echo "| size: CRAM $v with reference / no_ref=1 | | $(mb "${CRAM_SIZE[$v.ref]}") / $(mb "${CRAM_SIZE[$v.noref]}") | dataset/CRAM: $(ratio "${DS_SIZE[sorted]}" "${CRAM_SIZE[$v.ref]}") / $(ratio "${DS_SIZE[sorted]}" "${CRAM_SIZE[$v.noref]}") | (info) | |"
    done
    wb=$(sum_region_medians q_b3); ws=$(sum_region_medians q_st)
    local rq; rq=$(ratio "$wb" "$ws")
    echo "| region query 100 kb × ${#REGIONS[@]} ($QLINES records), wall summed | ${wb} s | ${ws} s | $rq | ≤ 1.0, identical | $(verdict "$rq" "<=" 1.0) |"
    wb=$(sum_medians k1_b3 ${#SMALL_1K[@]}); ws=$(sum_medians k1_st ${#SMALL_1K[@]})
    rq=$(ratio "$wb" "$ws")
    echo "| region query 1 kb × ${#SMALL_1K[@]}, wall summed | ${wb} s | ${ws} s | $rq | ≤ 1.0, identical | $(verdict "$rq" "<=" 1.0) |"
    wb=$(sum_medians b1_b3 ${#SMALL_1B[@]}); ws=$(sum_medians b1_st ${#SMALL_1B[@]})
    rq=$(ratio "$wb" "$ws")
    echo "| region query one base × ${#SMALL_1B[@]} (fixed cost), wall summed | ${wb} s | ${ws} s | $rq | ≤ 1.0, identical | $(verdict "$rq" "<=" 1.0) |"
    local qb qs; qb=$(region_rss_mb q_b3); qs=$(region_rss_mb q_st)
    echo "| region query, peak RSS | $qb MiB | $qs MiB | $(ratio "$qb" "$qs") | ≤ 100 MB | $(verdict "$(mib_to_mb "$qb")" "<=" 100) |"
    wb=$(wall chr_b3); ws=$(wall chr_st)
    echo "| whole $CHR to /dev/null, wall | ${wb} s ($(rate "$NREADS" "$wb")/s) | ${ws} s ($(rate "$NREADS" "$ws")/s) | $(ratio "$wb" "$ws") | ≤ 0.8 | $(verdict "$(ratio "$wb" "$ws")" "<=" 0.8) |"
    qb=$(rss_mb chr_b3); qs=$(rss_mb chr_st)
    echo "| whole $CHR to /dev/null, peak RSS | $qb MiB | $qs MiB | $(ratio "$qb" "$qs") | ≤ 100 MB | $(verdict "$(mib_to_mb "$qb")" "<=" 100) |"
    if [ $HAVE_DEPTH = 1 ]; then
        wb=$(wall depth_b3); ws=$(wall depth_st)
        echo "| depth $DEPTH_REGION, wall | ${wb} s | ${ws} s | $(ratio "$wb" "$ws") | identical; ≤ 20% of chunk bytes | $( [ -z "$(printf '%s\n' "${FAILED[@]:-}" | grep depth)" ] && echo identical || echo '**NO**') |"
        echo "| depth $DEPTH_REGION, chunk bytes decoded | ${DEPTH_PCT}% of a full query's | | | ≤ 20% | $(verdict "${DEPTH_PCT}" "<=" 20) |"
    else
        echo "| depth 1 Mbp | depth: not implemented | | | identical to samtools depth | n/a |"
    fi
    wb=$(wall export_b3); ws=$(wall conv_st_sorted)
    local re; re=$(ratio "$wb" "$ws")
    echo "| export dataset → BAM -@$T (vs samtools view -@$T -b sorted.bam) | ${wb} s, $(mb "$EXPORT_SIZE"), $(rss_mb export_b3) MiB$(failed_note export_b3) | ${ws} s | $re | ≤ 1.0 | $(verdict "$re" "<=" 1.0) |"
    echo
    checks_line "5 region queries of 100 kb, 10 of 1 kb and 10 of one base cmp-identical to samtools view, the name-sorted and shuffled-input datasets give the same records in the same position order; whole $CHR md5-identical; export record count$( [ $HAVE_DEPTH = 1 ] && echo '; depth cmp-identical')"
}
print_table_and_exit table
