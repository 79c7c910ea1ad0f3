#!/usr/bin/env bash
# The Node binding (bindings/node) against `bams3 query > /dev/null` and @gmod/bam 7.1.17 (the
# BAM reader behind JBrowse, pure JavaScript) on the source BAM + BAI, side by side in one run:
# records/s for a whole-chromosome scan and for five 100 kb regions (the regions of
# bench/run.sh), and the Node process's peak RSS. Prints a markdown table of medians.
#
#   bench/node.sh                     # from the repository root, after bindings/node/test.sh
#                                     # (or `npm install && npm run build` in bindings/node)
# Env knobs: BENCH_RUNS=3, BAMS3=target/release/bams3, BAMS3_BENCH_DIR=~/.cache/bams3/bench,
#   BENCH_CHROM=X, BENCH_TMP=/tmp, BENCH_OUT=FILE (also write the table there).
#
# Every reader touches every field of every record: name, flag, reference, position, MAPQ,
# CIGAR, mate reference and position, TLEN, sequence, qualities and the tags. Node and
# @gmod/bam are timed inside one process each (open once, then the queries); the CLI is one
# process per query, its wall time from bash. @gmod/bam reads the chromosome in 1 Mb windows
# (one getRecordsForRange call for all of it would hold every record at once), counting each
# record in the window holding its start. Exit status 1 when the readers disagree on a count.
set -euo pipefail

RUNS=${BENCH_RUNS:-3}
BAMS3=${BAMS3:-target/release/bams3}
DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
CHR=${BENCH_CHROM:-X}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
NODE_PKG=$ROOT/bindings/node
GMOD_DIR=$DIR/node-gmod
STALL=60
TIMEOUT=1200

"$HERE/build-input.sh"
[ -x "$BAMS3" ] || { echo "$BAMS3 not found: cargo build --release -p bams3-cli" >&2; exit 2; }
BAMS3=$(cd "$(dirname "$BAMS3")" && pwd)/$(basename "$BAMS3")
ls "$NODE_PKG"/bams3.*.node >/dev/null 2>&1 || { echo "no addon in $NODE_PKG: run bindings/node/test.sh or npm run build there" >&2; exit 2; }
command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time missing (apt-get install time)" >&2; exit 2; }

TMP=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/bams3-bench-node.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=bench/lib.sh
LOG_TAG=node source "$HERE/lib.sh"

if [ ! -f "$GMOD_DIR/node_modules/@gmod/bam/package.json" ]; then
    log "installing @gmod/bam@7.1.17 into $GMOD_DIR"
    mkdir -p "$GMOD_DIR"
    [ -f "$GMOD_DIR/package.json" ] || echo '{"name":"gmod-bench","version":"1.0.0","private":true}' > "$GMOD_DIR/package.json"
    (cd "$GMOD_DIR" && npm install --no-audit --no-fund --loglevel=error @gmod/bam@7.1.17 >/dev/null)
fi

log "convert sorted.bam"
"$BAMS3" convert -@2 --quiet "$DIR/sorted.bam" "$TMP/ds"
LEN=$(samtools view -H "$DIR/sorted.bam" | awk -v c="$CHR" '$1 == "@SQ" { n = ""; l = ""; for (i = 2; i <= NF; i++) { if ($i ~ /^SN:/) n = substr($i, 4); if ($i ~ /^LN:/) l = substr($i, 4) } if (n == c) print l }')
[ -n "$LEN" ] || { echo "no reference $CHR in sorted.bam" >&2; exit 2; }
REGIONS=()
for m in 10 20 30 40 50; do REGIONS+=("$CHR:${m}000001-${m}100000"); done

cat > "$TMP/node_bench.js" <<'JS'
// node_bench.js MODE DATASET REGION... -> prints "records seconds bytes maxrss_kib"
const bams3 = require(process.env.NODE_PKG);
const [mode, loc, ...regions] = process.argv.slice(2);
(async () => {
  const ds = await bams3.open(loc);
  let n = 0, bytes = 0, sink = 0;
  const t0 = performance.now();
  for (const region of regions) {
    if (mode === 'objects') {
      for await (const r of ds.query(region)) {
        n++;
        sink += r.name.length + r.flag + r.refName.length + r.pos + r.mapq + r.cigar.length + r.nextRefName.length
          + r.nextPos + r.tlen + r.seq.length + r.qual.length + Object.keys(r.tags).length;
      }
    } else {
      for await (const b of ds.queryBam(region)) {
        bytes += b.length;
        for (let p = 0; p < b.length; p += 4 + b.readUInt32LE(p)) n++;
      }
    }
  }
  const s = (performance.now() - t0) / 1000;
  console.log(n, s.toFixed(4), bytes || sink, process.resourceUsage().maxRSS);
})().catch((e) => { console.error(e); process.exit(1); });
JS
cat > "$TMP/gmod_bench.js" <<'JS'
// gmod_bench.js BAM CHR LEN whole|REGION... -> prints "records seconds sink maxrss_kib"
const { BamFile } = require(process.env.GMOD_DIR + '/node_modules/@gmod/bam/dist/index.js'); // no "main", and a path require ignores "exports"
const [bamPath, chr, len, ...regions] = process.argv.slice(2);
(async () => {
  const bam = new BamFile({ bamPath, baiPath: bamPath + '.bai' });
  await bam.getHeader();
  const windows = [];
  if (regions[0] === 'whole') {
    for (let s = 0; s < Number(len); s += 1000000) windows.push([chr, s, Math.min(Number(len), s + 1000000), true]);
  } else {
    for (const r of regions) {
      const [c, span] = r.split(':');
      const [b, e] = span.split('-').map(Number);
      windows.push([c, b - 1, e, false]);
    }
  }
  let n = 0, sink = 0;
  const t0 = performance.now();
  for (const [c, b, e, own] of windows) {
    for (const r of await bam.getRecordsForRange(c, b, e)) {
      if (own && r.start < b) continue;
      n++;
      const tags = r.tags;
      sink += r.name.length + r.flags + r.ref_id + r.start + r.mq + r.CIGAR.length + r.next_refid + r.next_pos
        + r.template_length + r.seq.length + (r.qual ? r.qual.length : 0) + Object.keys(tags).length;
    }
  }
  const s = (performance.now() - t0) / 1000;
  console.log(n, s.toFixed(4), sink, process.resourceUsage().maxRSS);
})().catch((e) => { console.error(e); process.exit(1); });
JS

# measure KEY CMD...: runs CMD, appends its "records seconds x rss" line to $TMP/KEY.out
measure() { local key=$1; shift; "$@" >> "$TMP/$key.out" || fail "$key: $*"; }
export NODE_PKG GMOD_DIR
cat "$DIR/sorted.bam" > /dev/null
for i in $(seq "$RUNS"); do
    log "run $i/$RUNS: whole $CHR"
    run_timed cli_whole "$BAMS3" query "$TMP/ds" "$CHR" > /dev/null
    measure node_obj_whole node "$TMP/node_bench.js" objects "$TMP/ds" "$CHR"
    measure node_bam_whole node "$TMP/node_bench.js" bam "$TMP/ds" "$CHR"
    measure gmod_whole node "$TMP/gmod_bench.js" "$DIR/sorted.bam" "$CHR" "$LEN" whole
    log "run $i/$RUNS: 5 x 100 kb"
    for k in "${!REGIONS[@]}"; do run_timed "cli_r$k" "$BAMS3" query "$TMP/ds" "${REGIONS[$k]}" > /dev/null; done
    measure node_obj_regions node "$TMP/node_bench.js" objects "$TMP/ds" "${REGIONS[@]}"
    measure node_bam_regions node "$TMP/node_bench.js" bam "$TMP/ds" "${REGIONS[@]}"
    measure gmod_regions node "$TMP/gmod_bench.js" "$DIR/sorted.bam" "$CHR" "$LEN" "${REGIONS[@]}"
done

WHOLE_N=$("$BAMS3" query -c "$TMP/ds" "$CHR")
REGION_N=$(for r in "${REGIONS[@]}"; do "$BAMS3" query -c "$TMP/ds" "$r"; done | awk '{n += $1} END{print n}')
col() { awk -v c="$2" '{print $c}' "$TMP/$1.out"; }
med() { col "$1" "$2" | sort -g | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
maxrss() { col "$1" 4 | sort -g | tail -n1 | awk '{printf "%.0f", $1/1024}'; }
# The target is in MB (10^6 bytes): 200 MB is 190.7 MiB.
maxrss_mb() { col "$1" 4 | sort -g | tail -n1 | awk '{printf "%.0f", $1*1024/1e6}'; }
for key in node_obj_whole node_bam_whole gmod_whole; do
    for n in $(col $key 1); do [ "$n" = "$WHOLE_N" ] || fail "$key read $n records, bams3 query -c says $WHOLE_N"; done
done
for key in node_obj_regions node_bam_regions gmod_regions; do
    for n in $(col $key 1); do [ "$n" = "$REGION_N" ] || fail "$key read $n records, bams3 query -c says $REGION_N"; done
done
rate() { awk -v n="$1" -v s="$2" 'BEGIN{ if (s == "n/a" || s == 0) print "n/a"; else printf "%.0f", n / s }'; }
kps() { awk -v r="$1" 'BEGIN{ if (r == "n/a") print "n/a"; else printf "%.0fk/s", r / 1000 }'; }
cli_whole_s=$(wall_raw cli_whole)
cli_regions_s=$(for k in "${!REGIONS[@]}"; do wall_raw "cli_r$k"; done | awk '{s += $1} END{printf "%.4f", s}')
r_cli_w=$(rate "$WHOLE_N" "$cli_whole_s"); r_cli_r=$(rate "$REGION_N" "$cli_regions_s")
r_obj_w=$(rate "$WHOLE_N" "$(med node_obj_whole 2)"); r_obj_r=$(rate "$REGION_N" "$(med node_obj_regions 2)")
r_bam_w=$(rate "$WHOLE_N" "$(med node_bam_whole 2)"); r_bam_r=$(rate "$REGION_N" "$(med node_bam_regions 2)")
r_gm_w=$(rate "$WHOLE_N" "$(med gmod_whole 2)"); r_gm_r=$(rate "$REGION_N" "$(med gmod_regions 2)")

{
echo "Node binding, $(date -u +%Y-%m-%d), $RUNS runs (medians), $(nproc) cores, node $(node --version), input $WHOLE_N records on $CHR"
echo
echo "| measurement | records | bams3 query > /dev/null | Node objects | Node queryBam | @gmod/bam 7.1.17 | objects / @gmod | queryBam / CLI | target |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "| whole $CHR | $WHOLE_N | $(kps "$r_cli_w") | $(kps "$r_obj_w") | $(kps "$r_bam_w") | $(kps "$r_gm_w") | $(ratio "$r_obj_w" "$r_gm_w") | $(ratio "$r_bam_w" "$r_cli_w") | objects ≥ 5× @gmod: $(verdict "$(ratio "$r_obj_w" "$r_gm_w")" ">=" 5); queryBam ≥ 0.8× CLI: $(verdict "$(ratio "$r_bam_w" "$r_cli_w")" ">=" 0.8) |"
echo "| 5 × 100 kb | $REGION_N | $(kps "$r_cli_r") | $(kps "$r_obj_r") | $(kps "$r_bam_r") | $(kps "$r_gm_r") | $(ratio "$r_obj_r" "$r_gm_r") | $(ratio "$r_bam_r" "$r_cli_r") | objects ≥ 5× @gmod: $(verdict "$(ratio "$r_obj_r" "$r_gm_r")" ">=" 5) |"
echo "| peak RSS, whole $CHR | | $(rss_mb cli_whole) MiB | $(maxrss node_obj_whole) MiB | $(maxrss node_bam_whole) MiB | $(maxrss gmod_whole) MiB | | | Node ≤ 200 MB: $(maxrss_mb node_obj_whole) MB, $(verdict "$(maxrss_mb node_obj_whole)" "<=" 200) |"
} | tee "${BENCH_OUT:-/dev/null}"
[ ${#FAILED[@]} -eq 0 ] || { echo "${#FAILED[@]} check(s) failed" >&2; exit 1; }
