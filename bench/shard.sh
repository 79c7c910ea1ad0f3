#!/usr/bin/env bash
# Sharded conversion (issue 15) on the benchmark input (~/.cache/bams3/bench/sorted.bam):
# wall time of 1 vs 2 shard workers side by side in one run (each worker `-@ 1`, as one job
# of a cluster would be, the 2 workers at once on this machine's 2 cores), the input bytes
# each shard reads, the datasets checked equal (chunk bytes and index), and `bams3 finalize`
# on a synthetic sharded conversion of BENCH_CHUNKS chunks (bench/synthetic_shards.py).
# Prints a markdown table (medians of BENCH_RUNS runs) for docs/BENCHMARKS.md.
#
#   bench/shard.sh                 # from the repository root
#
# Env knobs: BENCH_RUNS=3, BAMS3=target/release/bams3, BAMS3_BENCH_DIR, BENCH_TMP,
#   BENCH_CHUNKS=100000, BENCH_STALL=120, BENCH_TIMEOUT=1800.
# Targets (issue 15): 2 workers >= 1.7x faster than 1; finalize a small fraction of the
# conversion. Exit status 1 when a command failed or the datasets differ.
set -euo pipefail
RUNS=${BENCH_RUNS:-3}
BAMS3=${BAMS3:-target/release/bams3}
DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
CHUNKS=${BENCH_CHUNKS:-100000}
STALL=${BENCH_STALL:-120}
TIMEOUT=${BENCH_TIMEOUT:-1800}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=shard
[ "$RUNS" -ge 1 ] || { echo "BENCH_RUNS must be >= 1" >&2; exit 2; }
"$HERE/build-input.sh"
IN=$DIR/sorted.bam
[ -e "$IN.bai" ] || samtools index "$IN"
[ -x "$BAMS3" ] || { echo "$BAMS3 not found: cargo build --release -p bams3-cli" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time missing (apt-get install time)" >&2; exit 2; }
TMP=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/bams3-shard.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
start_all=$SECONDS

# Both shards of 2 at once (a shell of its own, for /usr/bin/time); fails when either fails.
# Each shard's CPU seconds (user + sys) are appended to $3/cpu_two.
TWO='d=$3; cpu() { /usr/bin/time -f "%U %S" -a -o "$d/cpu_two" "$@"; }
cpu "$0" convert -@ 1 --shard 1/2 "$1" "$2" 2>"$3/shard1.log" & a=$!
cpu "$0" convert -@ 1 --shard 2/2 "$1" "$2" 2>"$3/shard2.log" & b=$!
wait "$a" && wait "$b"'
load_start=$(cut -d" " -f1 /proc/loadavg)

for run in $(seq "$RUNS"); do
    log "run $run/$RUNS: 1 worker"
    rm -rf "$TMP/one"
    run_timed one /usr/bin/time -f "%U %S" -a -o "$TMP/cpu_one" "$BAMS3" convert -@ 1 --shard 1/1 "$IN" "$TMP/one" 2>"$TMP/shard-all.log"
    run_timed fin_one "$BAMS3" finalize --quiet "$TMP/one"
    log "run $run/$RUNS: 2 workers"
    rm -rf "$TMP/two"
    run_timed two bash -c "$TWO" "$BAMS3" "$IN" "$TMP/two" "$TMP"
    run_timed fin_two "$BAMS3" finalize --quiet "$TMP/two"
    diff -rq -x _metadata.json "$TMP/one" "$TMP/two" >/dev/null ||
        fail "run $run: the 2-shard dataset differs from the 1-shard one"
done
read_of() { grep -o 'read [0-9]* of [0-9]*' "$1" | awk '{print $2}'; }
r_all=$(read_of "$TMP/shard-all.log")
r1=$(read_of "$TMP/shard1.log")
r2=$(read_of "$TMP/shard2.log")
size=$(stat -c %s "$IN")
chunks=$(grep -o '"chunk_count": [0-9]*' "$TMP/one/_metadata.json" | awk '{print $2}')

log "finalize of $CHUNKS synthetic chunks"
python3 "$HERE/synthetic_shards.py" "$TMP/synth-template" "$CHUNKS" 4
for run in $(seq "$RUNS"); do
    rm -rf "$TMP/synth"
    cp -a "$TMP/synth-template" "$TMP/synth"
    run_timed synth "$BAMS3" finalize --quiet "$TMP/synth"
done
load_end=$(cut -d" " -f1 /proc/loadavg)
# Median CPU seconds of a 1-worker run, and of a 2-worker run (its two shards summed).
cpu_one=$(awk '{print $1 + $2}' "$TMP/cpu_one" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
cpu_two=$(awk '{s[int((NR-1)/2)] += $1 + $2} END{for (i in s) print s[i]}' "$TMP/cpu_two" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
# The speed-up 2 idle cores would give: the larger share's fraction of the input bytes.
ideal=$(awk -v a="$r1" -v b="$r2" -v s="$size" 'BEGIN{m = a > b ? a : b; printf "%.2f", s / m}')
index_mb=$(stat -c %s "$TMP/synth/_index/spatial.json" | awk '{printf "%.0f", $1/1e6}')

table() {
    local w1 w2 sp
    w1=$(wall_raw one)
    w2=$(wall_raw two)
    sp=$(ratio "$w1" "$w2")
    echo "Input: $IN ($(mb "$size"), $chunks chunks at the default options); medians of $RUNS runs, 1 and 2 workers in turn; load average $load_start at the start, $load_end at the end (2 cores)."
    echo
    echo "| measure | value | target | met |"
    echo "|---|---|---|---|"
    echo "| 1 worker (\`convert -@ 1 --shard 1/1\`) | $(wall one) s$(failed_note one) | | |"
    echo "| 2 workers (\`--shard 1/2\` and \`2/2\` at once, \`-@ 1\` each) | $(wall two) s$(failed_note two) | | |"
    echo "| speed-up, 2 workers vs 1 | ${sp}x | >= 1.7x | $(verdict "$sp" '>=' 1.7) |"
    echo "| CPU seconds, 1 worker; 2 workers (both shards) | $cpu_one; $cpu_two | | |"
    echo "| speed-up 2 idle cores would give (input / larger share) | ${ideal}x | | |"
    echo "| input bytes read: 1/1; 1/2; 2/2 | $(mb "$r_all"); $(mb "$r1"); $(mb "$r2") (of $(mb "$size")) | each shard its share | |"
    echo "| finalize of this dataset ($chunks chunks), vs the 1-worker conversion | $(wall fin_one) s ($(ratio3 "$(wall_raw fin_one)" "$w1")x) | small fraction | $(verdict "$(ratio3 "$(wall_raw fin_one)" "$w1")" '<=' 0.05) |"
    # What converting that many chunks takes at the rate just measured (1 worker).
    local conv
    conv=$(awk -v w="$w1" -v c="$chunks" -v n="$CHUNKS" 'BEGIN{ if (w == "n/a") print "n/a"; else printf "%.0f", w / c * n }')
    echo "| finalize of $CHUNKS synthetic chunks (4 shards, ${index_mb} MB index), vs converting $CHUNKS chunks at the rate above (${conv} s) | $(wall synth) s ($(ratio3 "$(wall_raw synth)" "$conv")x)$(failed_note synth) | small fraction | $(verdict "$(ratio3 "$(wall_raw synth)" "$conv")" '<=' 0.05) |"
    echo
    checks_line "the 2-shard dataset equals the 1-shard one but for _metadata.json's time, every run"
}
print_table_and_exit table
