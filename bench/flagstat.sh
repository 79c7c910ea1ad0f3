#!/usr/bin/env bash
# bams3 flagstat / idxstats vs samtools flagstat / idxstats on the benchmark input
# (~/.cache/bams3/bench/sorted.bam, 4.4M reads), side by side in one run, outputs checked
# byte for byte; then bams3 flagstat on an S3 dataset (moto on loopback) through the counting
# proxy (bams3-cli/examples/s3_count_proxy.rs), bytes fetched against the dataset's chunk bytes.
# Prints a markdown table (medians of BENCH_RUNS runs) for docs/BENCHMARKS.md.
#
#   bench/flagstat.sh                 # from the repository root
#
# Env knobs (as bench/s3.sh): BENCH_RUNS=5, BAMS3=target/release/bams3,
#   BENCH_PROXY=target/release/examples/s3_count_proxy, BAMS3_BENCH_DIR, BENCH_THREADS=2,
#   BENCH_TMP, BENCH_STALL=60, BENCH_TIMEOUT=600, BAMS3_MOTO_SERVER.
# Targets (issue 17): flagstat <= 0.3x samtools flagstat; bytes from S3 <= 10% of the dataset.
# Exit status 1 when a command failed or an output differs from samtools'.
set -euo pipefail
RUNS=${BENCH_RUNS:-5}
BAMS3=${BAMS3:-target/release/bams3}
PROXY_BIN=${BENCH_PROXY:-target/release/examples/s3_count_proxy}
DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
T=${BENCH_THREADS:-2}
STALL=${BENCH_STALL:-60}
TIMEOUT=${BENCH_TIMEOUT:-600}
MOTO=${BAMS3_MOTO_SERVER:-$HOME/.cache/bams3/moto-venv/bin/moto_server}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=flagstat
[ "$RUNS" -ge 1 ] || { echo "BENCH_RUNS must be >= 1" >&2; exit 2; }
"$HERE/build-input.sh"
[ -x "$MOTO" ] || "$HERE/../tests/fetch-data.sh"
for b in "$BAMS3" "$PROXY_BIN"; do
    [ -x "$b" ] || { echo "$b not found: cargo build --release -p bams3-cli --bin bams3 --example s3_count_proxy" >&2; exit 2; }
done
command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time missing (apt-get install time)" >&2; exit 2; }
TMP=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/bams3-flagstat.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

BAM=$DIR/sorted.bam
DS=$TMP/local.bams3
log "converting $BAM"
"$BAMS3" convert -@"$T" --quiet "$BAM" "$DS"
CHUNK_BYTES=$(find "$DS/data" -type f -name '*.chunk*' -printf '%s\n' | awk '{s += $1} END{print s}')
NREADS=$(awk '{n += $3 + $4} END{print n}' "$DIR/stats.txt")

# Outputs first: byte-identical to samtools.
for f in default json tsv; do
    cmp -s <(samtools flagstat -O "$f" "$BAM") <("$BAMS3" flagstat -O "$f" "$DS") ||
        fail "bams3 flagstat -O $f differs from samtools flagstat -O $f"
done
cmp -s <(samtools idxstats "$BAM") <("$BAMS3" idxstats "$DS") || fail "bams3 idxstats differs from samtools idxstats"

cat "$BAM" > /dev/null
for i in $(seq "$RUNS"); do
    log "run $i/$RUNS"
    run_timed st_flagstat samtools flagstat "$BAM" > /dev/null
    run_timed st_flagstat_t samtools flagstat -@"$T" "$BAM" > /dev/null
    run_timed b3_flagstat "$BAMS3" flagstat "$DS" > /dev/null
    run_timed st_idxstats samtools idxstats "$BAM" > /dev/null
    run_timed b3_idxstats "$BAMS3" idxstats "$DS" > /dev/null
done
SHARE=$("$BAMS3" flagstat --report "$DS" 2>&1 > /dev/null | sed -n 's/.*(\(.*%\)).*/\1/p')

# --------------------------------------------------------------------------- S3 (moto)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MPORT=$(free_port)
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 XDG_CACHE_HOME=$TMP/cache
unset AWS_ENDPOINT_URL AWS_PROFILE
"$MOTO" -H 127.0.0.1 -p "$MPORT" > "$TMP/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$MPORT/" && break; sleep 0.1; done
curl -s -X PUT -o /dev/null "http://127.0.0.1:$MPORT/bench" || { echo "moto did not start (see $TMP/server.log)" >&2; exit 2; }
"$PROXY_BIN" "$MPORT" > "$TMP/proxy.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$TMP/proxy.log" ] && break; sleep 0.05; done
PPORT=$(head -n1 "$TMP/proxy.log")
log "moto on $MPORT, counting proxy on $PPORT; uploading the dataset"
"$BAMS3" --endpoint-url "http://127.0.0.1:$MPORT" convert -@"$T" --quiet "$BAM" s3://bench/sorted.bams3
sleep 0.2
SEEN=$(wc -l < "$TMP/proxy.log")
rm -rf "$TMP/cache"
"$BAMS3" --endpoint-url "http://127.0.0.1:$PPORT" flagstat s3://bench/sorted.bams3 > "$TMP/s3.flagstat"
sleep 0.2
read -r S3_REQS S3_BYTES < <(tail -n +"$((SEEN + 1))" "$TMP/proxy.log" | awk '{r++; b += $3} END{printf "%d %d\n", r, b}')
cmp -s "$TMP/s3.flagstat" <(samtools flagstat "$BAM") || fail "bams3 flagstat on S3 differs from samtools flagstat"
for i in $(seq "$RUNS"); do
    rm -rf "$TMP/cache"
    run_timed b3_s3_flagstat "$BAMS3" --endpoint-url "http://127.0.0.1:$MPORT" flagstat s3://bench/sorted.bams3 > /dev/null
done
S3_SHARE=$(awk -v a="$S3_BYTES" -v b="$CHUNK_BYTES" 'BEGIN{printf "%.1f%%", 100 * a / b}')

R=$(ratio "$(wall_raw b3_flagstat)" "$(wall_raw st_flagstat)")
RT=$(ratio "$(wall_raw b3_flagstat)" "$(wall_raw st_flagstat_t)")
cat <<TABLE
Input: $NREADS reads ($(du -m "$BAM" | cut -f1) MB BAM, dataset chunks $((CHUNK_BYTES / 1000000)) MB), medians of $RUNS runs, $T threads.

| command | wall (s) | peak RSS (MB) | ratio to samtools | target |
|---|---|---|---|---|
| \`samtools flagstat\` | $(wall st_flagstat) | $(rss_mb st_flagstat) | 1 | |
| \`samtools flagstat -@$T\` | $(wall st_flagstat_t) | $(rss_mb st_flagstat_t) | 1 | |
| \`bams3 flagstat\` (local) | $(wall b3_flagstat) | $(rss_mb b3_flagstat) | $R ($RT vs \`-@$T\`) | ≤ 0.3: $(verdict "$R" "<=" 0.3) |
| \`samtools idxstats\` | $(wall st_idxstats) | $(rss_mb st_idxstats) | 1 | |
| \`bams3 idxstats\` (local) | $(wall b3_idxstats) | $(rss_mb b3_idxstats) | $(ratio "$(wall_raw b3_idxstats)" "$(wall_raw st_idxstats)") | |
| \`bams3 flagstat\` on S3 (moto, cold cache) | $(wall b3_s3_flagstat) | $(rss_mb b3_s3_flagstat) | | |

bams3 flagstat decodes $SHARE of the stored chunk bytes; on S3 it made $S3_REQS requests for
$S3_BYTES bytes, $S3_SHARE of the $CHUNK_BYTES chunk bytes (target ≤ 10%: $(awk -v a="$S3_BYTES" -v b="$CHUNK_BYTES" 'BEGIN{print (a * 10 <= b) ? "yes" : "NO"}')).
TABLE
[ ${#FAILED[@]} -eq 0 ] || { echo "${#FAILED[@]} check(s) failed" >&2; exit 1; }
