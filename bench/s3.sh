#!/usr/bin/env bash
# BAMS3 vs samtools over S3, side by side in one run: one S3-compatible server on loopback (moto
# or s3s-fs) holds both the dataset and sorted.bam + .bai; both tools reach it through the same counting proxy
# (bams3-cli/examples/s3_count_proxy.rs), which logs every request and the bytes it answered.
# Prints a markdown table of medians, request counts, bytes and ratios.
#
#   bench/s3.sh                       # from the repository root
#
# Env knobs (as bench/run.sh): BENCH_RUNS=3, BAMS3=target/release/bams3,
#   BENCH_PROXY=target/release/examples/s3_count_proxy, BAMS3_BENCH_DIR, BENCH_THREADS=2,
#   BENCH_TMP, BENCH_CHROM=X, BENCH_OUT=FILE, BENCH_STALL=60, BENCH_TIMEOUT=1200,
#   BAMS3_MOTO_SERVER (default ~/.cache/bams3/moto-venv/bin/moto_server, made by
#   tests/fetch-data.sh, which this script runs when it is missing; its boto3 uploads the BAM),
#   BENCH_S3_SERVER=moto|s3s-fs (s3s-fs: ~/.cache/bams3/s3s-fs, also made by
#   tests/fetch-data.sh; file-backed, checks signatures).
#
# "Cold" runs start with an empty cache directory (XDG_CACHE_HOME) for bams3 and an empty
# working directory for samtools (htslib saves a remote .bai there and reuses it); "warm" runs
# keep them. The convert comparison writes straight to the server, without the proxy.
# Exit status: 0 when every output check passed (targets do not affect it), 1 when a command
# failed or hung or an output differs from samtools (local BAM) or from the local dataset.
set -euo pipefail

RUNS=${BENCH_RUNS:-3}
BAMS3=${BAMS3:-target/release/bams3}
PROXY_BIN=${BENCH_PROXY:-target/release/examples/s3_count_proxy}
DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
T=${BENCH_THREADS:-2}
STALL=${BENCH_STALL:-60}
TIMEOUT=${BENCH_TIMEOUT:-1200}
CHR=${BENCH_CHROM:-X}
MOTO=${BAMS3_MOTO_SERVER:-$HOME/.cache/bams3/moto-venv/bin/moto_server}
SERVER=${BENCH_S3_SERVER:-moto}
S3S=$HOME/.cache/bams3/s3s-fs/bin/s3s-fs
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=s3

[ "$RUNS" -ge 1 ] || { echo "BENCH_RUNS must be >= 1" >&2; exit 2; }
start_all=$SECONDS

"$HERE/build-input.sh"
case "$SERVER" in
    moto | s3s-fs) ;;
    *) echo "BENCH_S3_SERVER must be moto or s3s-fs" >&2; exit 2 ;;
esac
# Both servers (and boto3, from moto's venv) come with the test set-up.
[ -x "$MOTO" ] && [ -x "$S3S" ] || "$HERE/../tests/fetch-data.sh"
for b in "$BAMS3" "$PROXY_BIN"; do
    [ -x "$b" ] || { echo "$b not found: cargo build --release -p bams3-cli --bin bams3 --example s3_count_proxy" >&2; exit 2; }
done
command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time missing (apt-get install time)" >&2; exit 2; }
abs() { echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; }
BAMS3=$(abs "$BAMS3"); PROXY_BIN=$(abs "$PROXY_BIN")

TMP=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/bams3-s3bench.XXXXXX")
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

# --------------------------------------------------------------------------- servers
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MPORT=$(free_port)
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
unset AWS_ENDPOINT_URL AWS_PROFILE
if [ "$SERVER" = moto ]; then
    "$MOTO" -H 127.0.0.1 -p "$MPORT" > "$TMP/server.log" 2>&1 &
else
    mkdir -p "$TMP/s3s"
    "$S3S" --host 127.0.0.1 --port "$MPORT" --access-key bench --secret-key bench "$TMP/s3s" > "$TMP/server.log" 2>&1 &
fi
PIDS+=($!)
for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$MPORT/" && break; sleep 0.1; done
curl -s -o /dev/null "http://127.0.0.1:$MPORT/" || { echo "$SERVER did not start (see $TMP/server.log)" >&2; exit 2; }
"$PROXY_BIN" "$MPORT" > "$TMP/proxy.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$TMP/proxy.log" ] && break; sleep 0.05; done
PPORT=$(head -n1 "$TMP/proxy.log")
SERVER_URL=http://127.0.0.1:$MPORT
PROXY_URL=http://127.0.0.1:$PPORT
log "$SERVER on $MPORT, counting proxy on $PPORT"

# Signed requests with boto3 (from the moto venv): s3s-fs checks signatures.
s3py() { # mb BUCKET | put BUCKET KEY FILE | get BUCKET KEY FILE
    "$(dirname "$MOTO")/python" - "$SERVER_URL" "$@" <<'EOF'
import sys, boto3
from botocore.config import Config
url, op, bucket, *rest = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
if op == "mb":
    s3.create_bucket(Bucket=bucket)
elif op == "put":
    s3.upload_file(rest[1], bucket, rest[0], ExtraArgs={"ContentType": "application/octet-stream"})
elif op == "get":
    s3.download_file(bucket, rest[0], rest[1])
EOF
}
s3py mb bench
log "uploading sorted.bam + .bai to $SERVER"
s3py put bench sorted.bam "$DIR/sorted.bam"
s3py put bench sorted.bam.bai "$DIR/sorted.bam.bai"

# Requests the proxy logged since the last call: "requests bytes" (bytes: response bodies).
SEEN_LINES=1
since_last() {
    sleep 0.1 # the proxy prints every 20 ms
    local n; n=$(wc -l < "$TMP/proxy.log")
    tail -n +"$((SEEN_LINES + 1))" "$TMP/proxy.log" | head -n "$((n - SEEN_LINES))" > "$TMP/last.requests"
    SEEN_LINES=$n
    awk '{r++; b += $3} END{printf "%d %d\n", r, b}' "$TMP/last.requests"
}
# count KEY: record the requests/bytes since the last call under KEY (the last run wins).
count() { since_last > "$TMP/$1.count"; }
reqs() { [ -s "$TMP/$1.count" ] && cut -d' ' -f1 "$TMP/$1.count" || echo n/a; }
bytes() { [ -s "$TMP/$1.count" ] && cut -d' ' -f2 "$TMP/$1.count" || echo n/a; }
kb() { awk -v b="$1" 'BEGIN{ if (b == "n/a") print "n/a"; else printf "%.1f kB", b/1000 }'; }

b3() { "$BAMS3" --endpoint-url "$PROXY_URL" "$@"; }
# samtools runs in $TMP/stcwd: htslib saves the remote .bai in its working directory.
st=(env -C "$TMP/stcwd" HTS_S3_HOST="127.0.0.1:$PPORT" HTS_S3_ADDRESS_STYLE=path samtools)
BAM_URL=s3+http://bench/sorted.bam
NREADS=$(awk '{n += $3 + $4} END{print n}' "$DIR/stats.txt")
log "input: $NREADS records; runs=$RUNS; threads=$T"
cat "$DIR/sorted.bam" > /dev/null

# --------------------------------------------------------------------------- convert
for i in $(seq "$RUNS"); do
    log "convert to local / to S3, run $i/$RUNS"
    rm -rf "$TMP/local.bams3"
    run_timed conv_local "$BAMS3" convert -@"$T" --quiet "$DIR/sorted.bam" "$TMP/local.bams3"
    run_timed conv_s3 "$BAMS3" --endpoint-url "$SERVER_URL" convert -@"$T" --quiet "$DIR/sorted.bam" "s3://bench/run$i.bams3"
done
DS=s3://bench/run1.bams3
LOCAL=$TMP/local.bams3
log "convert from S3 input to S3"
run_timed conv_s3s3 "$BAMS3" --endpoint-url "$SERVER_URL" convert -@"$T" --quiet "s3://bench/sorted.bam" "s3://bench/froms3.bams3"
# The S3 dataset must hold exactly the objects of the local one (same input, same options).
for k in _header.json _index/spatial.json; do
    s3py get bench "run1.bams3/$k" "$TMP/s3obj"
    cmp -s "$TMP/s3obj" "$LOCAL/$k" || fail "$k of the S3 dataset differs from the local dataset's"
done
META_BYTES=$(wc -c < "$LOCAL/_metadata.json")
INDEX_BYTES=$(wc -c < "$LOCAL/_index/spatial.json")
NCHUNKS=$(find "$LOCAL/data" -name '*.chunk*' | wc -l)
since_last > /dev/null

# What a full-record query of REGION needs at most, in bytes: "STREAMS SECTIONS": the stored
# streams of the chunks whose [first_pos, max_end) overlaps it (docs/FORMAT.md, "Which chunks a region
# needs") and the index sections that can hold them ("Index sections").
needed_bytes() { # REGION (CHR:BEG-END, 1-based)
    python3 - "$LOCAL" "$1" <<'EOF'
import json, sys
idx = json.load(open(sys.argv[1] + "/_index/spatial.json"))
meta = json.load(open(sys.argv[1] + "/_metadata.json"))
chrom, span = sys.argv[2].rsplit(":", 1)
beg, end = (int(x) for x in span.split("-"))
beg -= 1
rid = next(i for i, r in enumerate(idx["references"]) if r["name"] == chrom)
# Every stored byte of those chunks but their headers: with record blocks (codec 3) a query
# needs less (the blocks of its records), so a ratio below 1 is what blocks save.
HEADER = 16 + 32 * 14 + 4
streams = sum(c["stored_bytes"] - HEADER for c in idx["references"][rid]["chunks"]
              if c["count"] > 0 and c["first_pos"] < end and c["max_end"] > beg)
sections = sum(s[4] for s in meta.get("index_sections", [])
               if s[0] == rid and s[1] < end and s[2] > beg)
print(streams, sections)
EOF
}

# --------------------------------------------------------------------------- region queries
REGIONS=()
for m in 10 20 30 40 50; do REGIONS+=("$CHR:${m}000001-${m}100000"); done
log "region query checks (S3 vs samtools view of the local BAM)"
mkdir -p "$TMP/xdg" "$TMP/stcwd"
for r in "${REGIONS[@]}"; do
    samtools view "$DIR/sorted.bam" "$r" > "$TMP/q.st.sam"
    XDG_CACHE_HOME=$TMP/xdg b3 query "$DS" "$r" > "$TMP/q.b3.sam" || fail "bams3 query $DS $r exited with status $?"
    cmp -s "$TMP/q.b3.sam" "$TMP/q.st.sam" || fail "bams3 query $DS $r differs from samtools view of the local BAM"
    "${st[@]}" view "$BAM_URL" "$r" > "$TMP/q.sts3.sam" || fail "samtools view $BAM_URL $r exited with status $?"
    cmp -s "$TMP/q.sts3.sam" "$TMP/q.st.sam" || fail "samtools view $BAM_URL $r differs from the local BAM"
done
for i in $(seq "$RUNS"); do
    log "region queries run $i/$RUNS"
    for k in "${!REGIONS[@]}"; do
        r=${REGIONS[$k]}
        rm -rf "$TMP/xdg" "$TMP/stcwd"; mkdir -p "$TMP/xdg" "$TMP/stcwd"
        since_last > /dev/null
        run_timed "qcold_b3_$k" env XDG_CACHE_HOME="$TMP/xdg" "$BAMS3" --endpoint-url "$PROXY_URL" query "$DS" "$r" > /dev/null
        count "qcold_b3_$k"
        run_timed "qwarm_b3_$k" env XDG_CACHE_HOME="$TMP/xdg" "$BAMS3" --endpoint-url "$PROXY_URL" query "$DS" "$r" > /dev/null
        count "qwarm_b3_$k"
        run_timed "qcold_st_$k" "${st[@]}" view "$BAM_URL" "$r" > /dev/null
        count "qcold_st_$k"
        run_timed "qwarm_st_$k" "${st[@]}" view "$BAM_URL" "$r" > /dev/null
        count "qwarm_st_$k"
    done
done
sum_counts() { # prefix reqs|bytes
    local k tot=0 v
    for k in "${!REGIONS[@]}"; do v=$($2 "$1_$k"); [ "$v" != n/a ] || { echo n/a; return; }; tot=$((tot + v)); done
    echo "$tot"
}
max_counts() { # prefix reqs|bytes
    local k v m=0
    for k in "${!REGIONS[@]}"; do v=$($2 "$1_$k"); [ "$v" != n/a ] || { echo n/a; return; }; [ "$v" -le "$m" ] || m=$v; done
    echo "$m"
}
peak_rss_mb() { cat "$TMP"/$1.rss 2>/dev/null | sort -g | tail -n1 | awk '{printf "%.0f", $1/1024}'; }
NEEDED=0 SECTIONS=0
for r in "${REGIONS[@]}"; do
    read -r a b < <(needed_bytes "$r")
    NEEDED=$((NEEDED + a)); SECTIONS=$((SECTIONS + b))
done
NQ=${#REGIONS[@]}

# --------------------------------------------------------------------------- depth
DEPTH_REGION="$CHR:20000001-21000000"
log "depth vs full query from S3 over $DEPTH_REGION (warm metadata cache)"
samtools depth -r "$DEPTH_REGION" "$DIR/sorted.bam" > "$TMP/d.st"
XDG_CACHE_HOME=$TMP/xdg b3 stats "$DS" > /dev/null
since_last > /dev/null
XDG_CACHE_HOME=$TMP/xdg b3 depth "$DS" "$DEPTH_REGION" > "$TMP/d.b3" || fail "bams3 depth from S3 exited with status $?"
count depth_b3
cmp -s "$TMP/d.b3" "$TMP/d.st" || fail "bams3 depth $DEPTH_REGION from S3 differs from samtools depth"
XDG_CACHE_HOME=$TMP/xdg b3 query "$DS" "$DEPTH_REGION" > /dev/null || fail "bams3 query $DEPTH_REGION exited with status $?"
count depthq_b3
for i in $(seq "$RUNS"); do
    run_timed depth_b3 env XDG_CACHE_HOME="$TMP/xdg" "$BAMS3" --endpoint-url "$PROXY_URL" depth "$DS" "$DEPTH_REGION" > /dev/null
    run_timed depth_st "${st[@]}" depth -r "$DEPTH_REGION" "$BAM_URL" > /dev/null
done
since_last > /dev/null

# --------------------------------------------------------------------------- whole chromosome
log "whole $CHR from S3 (md5 check, then timed)"
B3_MD5=$({ XDG_CACHE_HOME=$TMP/xdg b3 query "$DS" "$CHR" || echo "failed $?"; } | md5sum | cut -d' ' -f1)
ST_MD5=$(samtools view "$DIR/sorted.bam" "$CHR" | md5sum | cut -d' ' -f1)
[ "$B3_MD5" = "$ST_MD5" ] || fail "bams3 query $DS $CHR differs from samtools view $CHR (md5)"
since_last > /dev/null
for i in $(seq "$RUNS"); do
    log "whole $CHR run $i/$RUNS"
    run_timed chr_b3 env XDG_CACHE_HOME="$TMP/xdg" "$BAMS3" --endpoint-url "$PROXY_URL" query "$DS" "$CHR" > /dev/null
    count chr_b3
    run_timed chr_st "${st[@]}" view "$BAM_URL" "$CHR" > /dev/null
    count chr_st
done

# --------------------------------------------------------------------------- table
table() {
    local wb ws r
    echo "Input: $NREADS records (bench/build-input.sh), sorted BAM $(mb "$(stat -c %s "$DIR/sorted.bam")"); dataset: $NCHUNKS chunks, _index/spatial.json $(kb "$INDEX_BYTES"), _metadata.json $(kb "$META_BYTES") (with the header copy and the index section table)."
    echo "$SERVER on loopback, both tools through the same counting proxy. Medians of $RUNS runs (wall); requests and bytes from the last run; peak RSS = max over runs."
    echo
    echo "| measurement | BAMS3 | samtools (BAM + .bai, s3+http) | ratio BAMS3/samtools | issue-4 target | holds |"
    echo "|---|---|---|---|---|---|"
    wb=$(wall conv_s3); ws=$(wall conv_local)
    r=$(ratio "$ws" "$wb")
    echo "| convert sorted.bam straight to S3 vs to a local directory, wall | ${wb} s ($(rate "$NREADS" "$wb")/s) vs ${ws} s ($(rate "$NREADS" "$ws")/s)$(failed_note conv_s3) | | S3 throughput = $r × local | ≥ 0.80 × local | $(verdict "$r" ">=" 0.80) |"
    echo "| convert s3://…/sorted.bam → s3://, wall (one run) | $(wall conv_s3s3) s$(failed_note conv_s3s3) | | | (info) | |"
    wb=$(sum_region_medians qcold_b3); ws=$(sum_region_medians qcold_st); r=$(ratio "$wb" "$ws")
    echo "| 100 kb region query × $NQ, cold, wall summed | ${wb} s | ${ws} s | $r | ≤ 1.0 | $(verdict "$r" "<=" 1.0) |"
    local mr; mr=$(max_counts qcold_b3 reqs)
    echo "| cold query: GET requests per query (max) | $mr | $(max_counts qcold_st reqs) | | ≤ 4 | $(verdict "$mr" "<=" 4) |"
    local cb; cb=$(sum_counts qcold_b3 bytes)
    # beyond the metadata and index sections, bytes per byte of the streams needed
    local over; over=$(awk -v c="$cb" -v n="$NEEDED" -v m="$META_BYTES" -v q="$NQ" -v s="$SECTIONS" 'BEGIN{ if (c == "n/a") print "n/a"; else printf "%.3f", (c - q*m - s) / n }')
    echo "| cold query: bytes, $NQ queries | $(kb "$cb"): touched chunks' streams $(kb "$NEEDED") × $over + $NQ × _metadata.json $(kb "$META_BYTES") + index sections $(kb "$SECTIONS") | $(kb "$(sum_counts qcold_st bytes)") | $(ratio "$cb" "$(sum_counts qcold_st bytes)") | ≤ 1.2 × streams + metadata | $(verdict "$over" "<=" 1.2) |"
    wb=$(sum_region_medians qwarm_b3); ws=$(sum_region_medians qwarm_st); r=$(ratio "$wb" "$ws")
    echo "| 100 kb region query × $NQ, warm cache, wall summed | ${wb} s | ${ws} s (.bai kept by htslib) | $r | (info) | |"
    mr=$(max_counts qwarm_b3 reqs)
    echo "| warm query: requests per query (max; 1 revalidation + chunk GETs) | $mr | $(max_counts qwarm_st reqs) | | ≤ 1 + chunks touched | |"
    echo "| warm query: bytes, $NQ queries | $(kb "$(sum_counts qwarm_b3 bytes)") (touched chunks' streams $(kb "$NEEDED")) | $(kb "$(sum_counts qwarm_st bytes)") | $(ratio "$(sum_counts qwarm_b3 bytes)" "$(sum_counts qwarm_st bytes)") | (info) | |"
    local qb qs; qb=$(peak_rss_mb 'q*_b3_*'); qs=$(peak_rss_mb 'q*_st_*')
    echo "| region query, peak RSS | $qb MiB | $qs MiB | $(ratio "$qb" "$qs") | ≤ 100 MB | $(verdict "$(mib_to_mb "$qb")" "<=" 100) |"
    local db qbytes; db=$(bytes depth_b3); qbytes=$(bytes depthq_b3); r=$(ratio "$db" "$qbytes")
    echo "| depth $DEPTH_REGION: bytes vs a full query of it (warm metadata) | $(kb "$db") vs $(kb "$qbytes"), $(reqs depth_b3) vs $(reqs depthq_b3) requests | | depth/query = $r | ≤ 0.20 | $(verdict "$r" "<=" 0.20) |"
    wb=$(wall depth_b3); ws=$(wall depth_st)
    echo "| depth $DEPTH_REGION, wall | ${wb} s | ${ws} s | $(ratio "$wb" "$ws") | identical output | $( [ -z "$(printf '%s\n' "${FAILED[@]:-}" | grep depth)" ] && echo identical || echo '**NO**') |"
    wb=$(wall chr_b3); ws=$(wall chr_st)
    echo "| whole $CHR from S3 to /dev/null, wall | ${wb} s ($(rate "$NREADS" "$wb")/s), $(reqs chr_b3) requests, $(mb "$(bytes chr_b3)") | ${ws} s, $(reqs chr_st) requests, $(mb "$(bytes chr_st)") | $(ratio "$wb" "$ws") | (info) | |"
    qb=$(rss_mb chr_b3); qs=$(rss_mb chr_st)
    echo "| whole $CHR from S3, peak RSS | $qb MiB | $qs MiB | $(ratio "$qb" "$qs") | ≤ 100 MB | $(verdict "$(mib_to_mb "$qb")" "<=" 100) |"
    echo
    checks_line "$NQ region queries from S3 cmp-identical to samtools view of the local BAM, and samtools over s3+http too; depth from S3 cmp-identical to samtools depth; whole $CHR from S3 md5-identical; the S3 dataset's header and index byte-identical to the local conversion's"
}
print_table_and_exit table
