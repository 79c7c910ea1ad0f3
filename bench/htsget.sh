#!/usr/bin/env bash
# bams3 serve against htsget-rs (htsget-actix 0.12.9) on the benchmark input, in one run: time
# from ticket request to the last byte for 100 kb regions and for the whole chromosome, bytes
# transferred, and tickets/s with 8 concurrent clients (each fetching a ticket and all its
# blocks). Both are read by the same client (bench/htsget_client.py: one keep-alive connection
# per host and thread, blocks fetched in order as htslib does). Output checks: through
# samtools' htsget client, bams3 serve gives exactly `samtools view sorted.bam REGION` and
# htsget-rs a superset of it (block granularity; samtools does not filter it).
#
#   bench/htsget.sh > table.md
#   BAMS3=target/release/bams3  BAMS3_BENCH_DIR=~/.cache/bams3/bench  BENCH_RUNS=5
#   HTSGET_ACTIX=~/.cache/bams3/htsget-rs/bin/htsget-actix (cargo install --root ~/.cache/bams3/htsget-rs htsget-actix)
#   BAMS3_HTSGET_DATASET=DIR   reuse a dataset of sorted.bam instead of converting one
#   LOAD_SECONDS=20
#   BAMS3_SERVE_ARGS="-l 0"     extra `bams3 serve` options (e.g. stored BGZF blocks)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BAMS3=${BAMS3:-$here/../target/release/bams3}
DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
HTSGET_ACTIX=${HTSGET_ACTIX:-$HOME/.cache/bams3/htsget-rs/bin/htsget-actix}
RUNS=${BENCH_RUNS:-5}
LOAD_SECONDS=${LOAD_SECONDS:-20}
client="$here/htsget_client.py"
log() { printf '[htsget %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
FAILED=()
fail() { echo "!!!!!!!! CHECK FAILED: $*" >&2; FAILED+=("$*"); }

for f in "$BAMS3" "$HTSGET_ACTIX" "$DIR/sorted.bam" "$DIR/sorted.bam.bai"; do
    [ -e "$f" ] || { echo "$f is missing" >&2; exit 2; }
done
TMP=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/bams3-htsget.XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ -n "${BAMS3_HTSGET_DATASET:-}" ]; then
    DS=$BAMS3_HTSGET_DATASET
else
    DS=$TMP/root/sorted.bams3
    mkdir -p "$TMP/root"
    log "convert sorted.bam"
    "$BAMS3" convert --quiet "$DIR/sorted.bam" "$DS"
fi
CHR=$(samtools idxstats "$DIR/sorted.bam" | awk '$3 > 0 {print $1; exit}')
LEN=$(samtools idxstats "$DIR/sorted.bam" | awk -v c="$CHR" '$1 == c {print $2}')

# Servers: ours over the dataset's directory; htsget-rs over the BAM's (ticket and data servers).
# shellcheck disable=SC2086 # BAMS3_SERVE_ARGS is a list of options
"$BAMS3" serve --listen 127.0.0.1:0 --root "$(dirname "$DS")" ${BAMS3_SERVE_ARGS:-} 2>"$TMP/serve.log" &
pids+=($!)
tp=$(port); dp=$(port)
cat >"$TMP/htsget-rs.toml" <<TOML
[ticket_server]
addr = "127.0.0.1:$tp"
[data_server]
addr = "127.0.0.1:$dp"
[[locations]]
append_to = ""
[locations.location]
kind = "File"
scheme = "HTTP"
authority = "127.0.0.1:$dp"
local_path = "$DIR"
TOML
RUST_LOG=error "$HTSGET_ACTIX" -c "$TMP/htsget-rs.toml" >"$TMP/htsget-rs.log" 2>&1 &
pids+=($!)
ours=
for _ in $(seq 100); do
    ours=$(sed -n 's/^bams3 serve: listening on //p' "$TMP/serve.log" || true)
    [ -n "$ours" ] && curl -s -o /dev/null "http://127.0.0.1:$tp/reads/service-info" && break
    sleep 0.1
done
OURS="$ours/reads/$(basename "$DS")"
THEIRS="http://127.0.0.1:$tp/reads/sorted"

# 100 kb regions, seeded, spread over the chromosome.
mapfile -t STARTS < <(python3 -c "
import random; r = random.Random(18)
print('\n'.join(str(r.randrange(0, $LEN - 100000)) for _ in range(20)))")
q() { echo "referenceName=$CHR&start=$1&end=$(($1 + 100000))"; }

log "output checks"
for s in "${STARTS[@]:0:5}"; do
    samtools view "$DIR/sorted.bam" "$CHR:$((s + 1))-$((s + 100000))" >"$TMP/st.sam"
    samtools view "$OURS?$(q "$s")" >"$TMP/ours.sam" || fail "samtools on bams3 serve $s"
    samtools view "$THEIRS?$(q "$s")" >"$TMP/theirs.sam" || fail "samtools on htsget-rs $s"
    cmp -s "$TMP/st.sam" "$TMP/ours.sam" || fail "bams3 serve $CHR:$s+100k differs from samtools view"
    # A superset: every exact line is in htsget-rs' output, in order.
    python3 -c '
import sys
want = open(sys.argv[1]).read().splitlines(); got = iter(open(sys.argv[2]).read().splitlines())
sys.exit(0 if all(any(w == g for g in got) for w in want) else 1)' "$TMP/st.sam" "$TMP/theirs.sam" ||
        fail "htsget-rs $CHR:$s+100k is not a superset of samtools view"
    echo "$(wc -l <"$TMP/st.sam") $(wc -l <"$TMP/theirs.sam")" >>"$TMP/records"
done
st_md5=$(samtools view "$DIR/sorted.bam" "$CHR" | md5sum | cut -d' ' -f1)
ours_md5=$(samtools view "$OURS?referenceName=$CHR" | md5sum | cut -d' ' -f1)
[ "$st_md5" = "$ours_md5" ] || fail "bams3 serve whole $CHR differs from samtools view $CHR"

median() { sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
log "time to last byte, 100 kb regions x 5, $RUNS runs"
for run in $(seq "$RUNS"); do
    for i in 0 1 2 3 4; do
        python3 "$client" ttlb "$OURS?$(q "${STARTS[$i]}")" >>"$TMP/ours.$i"
        python3 "$client" ttlb "$THEIRS?$(q "${STARTS[$i]}")" >>"$TMP/theirs.$i"
    done
done
sum_medians() { local t=0 i; for i in 0 1 2 3 4; do t=$(awk -v a="$t" -v b="$(cut -d' ' -f1 "$TMP/$1.$i" | median)" 'BEGIN{print a+b}'); done; echo "$t"; }
sum_bytes() { local t=0 i; for i in 0 1 2 3 4; do t=$((t + $(head -1 "$TMP/$1.$i" | cut -d' ' -f2))); done; echo "$t"; }
O100=$(sum_medians ours); T100=$(sum_medians theirs)
OB100=$(sum_bytes ours); TB100=$(sum_bytes theirs)

WRUNS=$(( RUNS < 3 ? RUNS : 3 ))
log "time to last byte, whole $CHR, $WRUNS runs"
for run in $(seq "$WRUNS"); do
    python3 "$client" ttlb "$OURS?referenceName=$CHR" >>"$TMP/ours.w"
    python3 "$client" ttlb "$THEIRS?referenceName=$CHR" >>"$TMP/theirs.w"
done
OW=$(cut -d' ' -f1 "$TMP/ours.w" | median); TW=$(cut -d' ' -f1 "$TMP/theirs.w" | median)
OBW=$(head -1 "$TMP/ours.w" | cut -d' ' -f2); TBW=$(head -1 "$TMP/theirs.w" | cut -d' ' -f2)
OURLS=$(head -1 "$TMP/ours.w" | cut -d' ' -f3); TURLS=$(head -1 "$TMP/theirs.w" | cut -d' ' -f3)

log "load: 8 clients x ${LOAD_SECONDS} s each, 20 regions of 100 kb"
mapfile -t OURL < <(for s in "${STARTS[@]}"; do echo "$OURS?$(q "$s")"; done)
mapfile -t TURL < <(for s in "${STARTS[@]}"; do echo "$THEIRS?$(q "$s")"; done)
ORPS=$(python3 "$client" load "$LOAD_SECONDS" 8 "${OURL[@]}") || { fail "load on bams3 serve"; ORPS=n/a; }
TRPS=$(python3 "$client" load "$LOAD_SECONDS" 8 "${TURL[@]}") || { fail "load on htsget-rs"; TRPS=n/a; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "n/a" || b == "n/a" || b == 0) print "n/a"; else printf "%.2f", a/b }'; }
verdict() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN{ if (v == "n/a") {print "n/a"; exit}; ok = (op == "<=") ? (v <= t) : (v >= t); print ok ? "yes" : "**NO**" }'; }
mb() { awk -v b="$1" 'BEGIN{ printf "%.2f MB", b/1e6 }'; }
read -r ex sup < <(awk '{a += $1; b += $2} END{print a, b}' "$TMP/records")
r100=$(ratio "$O100" "$T100"); rw=$(ratio "$OW" "$TW"); rrps=$(ratio "$ORPS" "$TRPS")
echo "| measurement | bams3 serve | htsget-rs | ratio | target | met |"
echo "|---|---|---|---|---|---|"
echo "| 100 kb region × 5, ticket to last byte, medians summed | $(printf %.3f "$O100") s | $(printf %.3f "$T100") s | $r100 | ≤ 1.0 | $(verdict "$r100" "<=" 1.0) |"
echo "| 100 kb region × 5, bytes transferred | $(mb "$OB100") | $(mb "$TB100") | $(ratio "$OB100" "$TB100") | (info) | |"
echo "| 100 kb region × 5 (first 5), records samtools prints | $ex (exact) | $sup (block superset) | | (info) | |"
echo "| whole $CHR, ticket to last byte (median of $WRUNS) | $(printf %.2f "$OW") s ($OURLS URLs) | $(printf %.2f "$TW") s ($TURLS URLs) | $rw | (info) | |"
echo "| whole $CHR, bytes transferred | $(mb "$OBW") | $(mb "$TBW") | $(ratio "$OBW" "$TBW") | (info) | |"
echo "| tickets/s, 8 concurrent clients, 100 kb regions | $ORPS | $TRPS | $rrps | ≥ 1.0 | $(verdict "$rrps" ">=" 1.0) |"
if [ ${#FAILED[@]} -eq 0 ]; then echo; echo "Output checks: all passed."; else echo; echo "Output checks FAILED: ${FAILED[*]}"; exit 1; fi
