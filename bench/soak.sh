#!/usr/bin/env bash
# The S3 soak of issue 14 (part 4): BENCH_QUERIES region queries and 3 conversions of the
# benchmark input (~/.cache/bams3/bench/sorted.bam) through bench/fault_proxy.py, which puts
# faults into BENCH_FAULT_RATE (default 10%) of the requests to a loopback moto, in equal shares
# of every kind: 503 SlowDown, 500 InternalError, connection reset, a body cut short, and a
# stalled response the client must time out (after its 30 s read timeout).
#
# Checks: every conversion succeeds and its dataset validates and has the index (every chunk's
# size and CRC) of a local conversion without faults; every query that exits 0 printed exactly
# what `samtools view sorted.bam REGION` prints; nothing else counts as a pass. Reports the faults
# injected (each one a retry for the client), the queries that failed outright, and the time the
# faults cost (the same queries without faults, in the same run).
#
#   bench/soak.sh                        # from the repository root
#
# Env knobs: BENCH_QUERIES=1000, BENCH_PARALLEL=8, BENCH_FAULT_RATE=0.10, BENCH_SEED=7,
#   BAMS3=target/release/bams3, BAMS3_BENCH_DIR, BENCH_TMP, BENCH_INPUT (another indexed BAM).
set -euo pipefail
QUERIES=${BENCH_QUERIES:-1000}
PAR=${BENCH_PARALLEL:-8}
RATE=${BENCH_FAULT_RATE:-0.10}
SEED=${BENCH_SEED:-7}
BAMS3=${BAMS3:-target/release/bams3}
DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=soak
if [ -n "${BENCH_INPUT:-}" ]; then
    IN=$BENCH_INPUT # a smaller indexed BAM, to try the script out
else
    "$HERE/build-input.sh"
    IN=$DIR/sorted.bam
fi
[ -e "$IN.bai" ] || [ -e "$IN.csi" ] || samtools index "$IN"
[ -x "$BAMS3" ] || { echo "$BAMS3 not found: cargo build --release -p bams3-cli" >&2; exit 2; }
BAMS3=$(cd "$(dirname "$BAMS3")" && pwd)/$(basename "$BAMS3")
MOTO=$HOME/.cache/bams3/moto-venv/bin/moto_server
PY=$HOME/.cache/bams3/moto-venv/bin/python
[ -x "$MOTO" ] || "$HERE/../tests/fetch-data.sh"
TMP=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/bams3-soak.XXXXXX")
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

MPORT=$(free_port)
"$MOTO" -H 127.0.0.1 -p "$MPORT" > "$TMP/moto.log" 2>&1 & PIDS+=($!)
PPORT=$(free_port)
python3 "$HERE/fault_proxy.py" --listen "$PPORT" --upstream "$MPORT" --rate "$RATE" --seed "$SEED" \
    --stats "$TMP/faults.json" > "$TMP/proxy.log" 2>&1 & PIDS+=($!)
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$MPORT/" && grep -q listening "$TMP/proxy.log" && break
    sleep 0.2
done
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
    AWS_EC2_METADATA_DISABLED=true XDG_CACHE_HOME=$TMP/cache
DIRECT=(--endpoint-url "http://127.0.0.1:$MPORT")
FAULTY=(--endpoint-url "http://127.0.0.1:$PPORT")
s3py() { "$PY" - "$MPORT" "$@"; }
s3py soak "$IN" <<'EOF'
import sys, boto3
port, bucket, path = sys.argv[1], sys.argv[2], sys.argv[3]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
s3.create_bucket(Bucket=bucket)
s3.upload_file(path, bucket, "sorted.bam")
EOF
get_object() { # KEY -> stdout
    s3py soak "$1" <<'EOF'
import sys, boto3
port, bucket, key = sys.argv[1], sys.argv[2], sys.argv[3]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
sys.stdout.buffer.write(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
EOF
}

log "local conversion without faults (the reference)"
"$BAMS3" convert --quiet "$IN" "$TMP/local.bams3"

: > "$TMP/conversions"
convert_through_faults() { # NAME INPUT
    local name=$1 input=$2 t0 secs
    t0=$EPOCHREALTIME
    if "$BAMS3" "${FAULTY[@]}" convert --quiet "$input" "s3://soak/$name.bams3" 2> "$TMP/$name.err"; then
        secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
        "$BAMS3" "${DIRECT[@]}" validate --quiet "s3://soak/$name.bams3" > /dev/null ||
            fail "$name: the dataset written through faults does not validate"
        cmp -s <(get_object "$name.bams3/_index/spatial.json") "$TMP/local.bams3/_index/spatial.json" ||
            fail "$name: its index differs from the local conversion's"
        echo "| $name ($input) | ok, ${secs} s |" >> "$TMP/conversions"
    else
        fail "$name: conversion through faults failed: $(tail -1 "$TMP/$name.err")"
        echo "| $name ($input) | **failed** |" >> "$TMP/conversions"
    fi
    log "conversion $name done"
}
convert_through_faults a "$IN"
convert_through_faults b "$IN"
convert_through_faults c "s3://soak/sorted.bam"

# Seeded random regions, 1 kb to 200 kb, on the reference with the most reads.
read -r REF REFLEN < <(samtools idxstats "$IN" | sort -t$'\t' -k3,3nr | head -1 | cut -f1,2)
python3 - "$QUERIES" "$SEED" "$REF" "$REFLEN" > "$TMP/regions" <<'EOF'
import random, sys
n, seed, ref, reflen = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
r = random.Random(seed)
for _ in range(n):
    length = min(r.randint(1000, 200000), reflen)
    start = r.randint(1, reflen - length + 1)
    print(f"{ref}:{start}-{start + length - 1}")
EOF
log "samtools view of the $QUERIES regions (the oracle)"
mkdir -p "$TMP/want" "$TMP/got" "$TMP/clean"
i=0
while read -r reg; do
    i=$((i + 1))
    samtools view "$IN" "$reg" | md5sum | cut -c1-32 > "$TMP/want/$i"
done < "$TMP/regions"

# One query: its md5 and exit status, into DIR/N.
query_one() { # DIR ENDPOINT N REGION
    local out
    if out=$(set -o pipefail; "$BAMS3" --endpoint-url "$2" query s3://soak/a.bams3 "$4" 2> "$1/$3.err" | md5sum | cut -c1-32); then
        echo "$out" > "$1/$3"
    fi
}
export -f query_one
export BAMS3
run_queries() { # DIR ENDPOINT
    local t0=$EPOCHREALTIME
    awk '{print NR, $0}' "$TMP/regions" |
        xargs -P "$PAR" -L 1 bash -c 'query_one "$0" "$1" "$2" "$3"' "$1" "$2"
    awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}'
}
log "$QUERIES queries without faults ($PAR at a time)"
clean_s=$(run_queries "$TMP/clean" "http://127.0.0.1:$MPORT")
log "$QUERIES queries through the faults ($PAR at a time)"
faulty_s=$(run_queries "$TMP/got" "http://127.0.0.1:$PPORT")

wrong=0; failed=0; clean_wrong=0
for i in $(seq "$QUERIES"); do
    if [ -s "$TMP/got/$i" ]; then
        cmp -s "$TMP/got/$i" "$TMP/want/$i" || { wrong=$((wrong + 1)); fail "query $i ($(sed -n "${i}p" "$TMP/regions")): wrong result"; }
    else
        failed=$((failed + 1))
    fi
    if [ ! -s "$TMP/clean/$i" ] || ! cmp -s "$TMP/clean/$i" "$TMP/want/$i"; then
        clean_wrong=$((clean_wrong + 1)); fail "query $i without faults: wrong or failed"
    fi
done
sleep 3 # the proxy writes its counts every 2 s
requests=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["requests"])' "$TMP/faults.json")
total=$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1]))["faults"].values()))' "$TMP/faults.json")
kinds=$(python3 -c 'import json,sys; print(", ".join(f"{k} {v}" for k, v in json.load(open(sys.argv[1]))["faults"].items()))' "$TMP/faults.json")
echo
echo "S3 soak (\`BENCH_QUERIES=$QUERIES bench/soak.sh\`, fault rate $RATE, seed $SEED, load average $(cut -d' ' -f1-3 /proc/loadavg)):"
echo
echo "| conversion through faults | result |"
echo "|---|---|"
cat "$TMP/conversions"
echo
echo "| measure | value |"
echo "|---|---|"
echo "| requests through the proxy (conversions and queries) | $requests |"
echo "| faults injected (each a retry) | $total ($kinds) |"
echo "| queries: right / wrong / failed outright | $((QUERIES - wrong - failed)) / $wrong / $failed |"
echo "| $QUERIES queries, $PAR at a time: without faults; with faults | ${clean_s} s; ${faulty_s} s ($(ratio "$faulty_s" "$clean_s")x) |"
if [ ${#FAILED[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${FAILED[@]}" >&2
    exit 1
fi
