#!/usr/bin/env bash
# Tests of `bams3 serve` (htsget 1.3) with real clients: htslib's own htsget client
# (`samtools view 'http://.../reads/ID?referenceName=..'`) must print exactly what
# `samtools view SRC.bam REGION` prints, on seeded random and edge regions of every real test
# BAM (~/.cache/bams3/test-data/MANIFEST), whole references, `*` and whole datasets, through
# tickets cut into many record URLs; POST with several regions; fields/tags/notags; every
# error class from real bad requests; ids that try to leave the root; bearer auth; CORS; a
# region limit; datasets on a loopback moto S3 server and through --map; the GA4GH reference
# client (`htsget` from PyPI) downloading the ticket's exact bytes, which htslib reads the same;
# the --viewer page in Debian's headless chromium (driven by playwright-core): igv.js reads
# regions through the endpoint and shows as many alignments as samtools counts.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
BAMS3="${BAMS3:-$root/target/release/bams3}"
data="${BAMS3_TEST_DATA:-$HOME/.cache/bams3/test-data}"
moto="${BAMS3_MOTO_SERVER:-$HOME/.cache/bams3/moto-venv/bin/moto_server}"
venv="${BAMS3_HTSGET_VENV:-$HOME/.cache/bams3/htsget-venv}"
N_RANDOM="${N_RANDOM:-30}"
MAX_REGIONS="${MAX_REGIONS:-90}"

passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*" >&2
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

# Prerequisites: installed when missing, a failure when they cannot be.
missing=()
command -v samtools >/dev/null || missing+=(samtools)
command -v bgzip >/dev/null || missing+=(tabix)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for f in "$BAMS3" "$data/MANIFEST" "$moto" "$root/bindings/htslib/regions.py"; do
    if [ ! -e "$f" ]; then
        fail "$f is missing (build the workspace; tests/fetch-data.sh installs test data and moto)"
        finish
    fi
done
if [ ! -x "$venv/bin/htsget" ]; then
    python3 -m venv "$venv" && "$venv/bin/pip" install -q htsget==0.2.6 >/dev/null ||
        fail "pip install htsget into $venv"
fi
# igv.js (served by --viewer-assets) and playwright-core (no browser download: it drives
# /usr/bin/chromium), at the versions package-lock.json pins.
(cd "$here" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) ||
    fail "npm ci in $here"
artifacts="${BAMS3_TEST_ARTIFACTS:-$root/target/test-artifacts}/htsget"
mkdir -p "$artifacts"

tmp="$(mktemp -d)"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
export XDG_CACHE_HOME="$tmp/cache"

# start_server LOG ARGS...: starts `bams3 serve` on a free loopback port; sets $base.
start_server() {
    local log="$1"
    shift
    : >"$log"
    "$BAMS3" serve --listen 127.0.0.1:0 "$@" 2>"$log" &
    pids+=($!)
    base=
    for _ in $(seq 200); do
        base="$(sed -n 's/^bams3 serve: listening on //p' "$log" || true)"
        [ -n "$base" ] && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.05
    done
    fail "bams3 serve $* did not start: $(head -3 "$log")"
    finish
}

# same NAME A-CMD... -- B-CMD...: both commands print the same stdout and exit the same.
same() {
    local name="$1" a=() ra=0 rb=0
    shift
    while [ "$1" != -- ]; do a+=("$1"); shift; done
    shift
    "${a[@]}" >"$tmp/a.out" 2>"$tmp/a.err" || ra=$?
    "$@" >"$tmp/b.out" 2>"$tmp/b.err" || rb=$?
    if [ "$ra" = "$rb" ] && cmp -s "$tmp/a.out" "$tmp/b.out"; then
        ok
    else
        fail "$name: $* (exit $rb, oracle $ra; $(wc -l <"$tmp/b.out") lines vs $(wc -l <"$tmp/a.out"))"
        diff "$tmp/a.out" "$tmp/b.out" | head -5 >&2 || true
        head -3 "$tmp/b.err" >&2 || true
    fi
}

# status NAME EXPECTED-STATUS EXPECTED-ERROR CURL-ARGS...: the HTTP status and the error type
# of the JSON body.
status() {
    local name="$1" want="$2" err="$3" got
    shift 3
    got="$(curl -s -o "$tmp/s.out" -w '%{http_code}' "$@" || true)"
    local kind
    kind="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["htsget"].get("error",""))' "$tmp/s.out" 2>/dev/null || true)"
    if [ "$got" = "$want" ] && [ "$kind" = "$err" ]; then
        ok
    else
        fail "$name: HTTP $got '$kind', expected $want '$err': $(head -c 200 "$tmp/s.out")"
    fi
}

# The oracle for NAME: the source BAM when it is coordinate-sorted (it indexes), else the
# source sorted by samtools. Sets $bam and $sorted (1 or 0).
oracle() {
    local name="$1" src="$2"
    mkdir -p "$tmp/oracle"
    bam="$tmp/oracle/$name.bam"
    cp "$src" "$bam"
    if samtools index "$bam" 2>/dev/null; then
        sorted=1
    else
        sorted=0
        samtools sort --no-PG -o "$bam" "$src" 2>/dev/null
        samtools index "$bam"
    fi
}

# check_regions NAME SRC DATASET-DIR TICKET-URL N: whole dataset, header, N random and edge
# regions through samtools' htsget client against samtools on the oracle BAM.
check_regions() {
    local name="$1" src="$2" dataset="$3" url="$4" n="$5" r q
    if [ "$sorted" = 1 ]; then
        same "$name whole, -h" samtools view --no-PG -h "$bam" -- samtools view --no-PG -h "$url"
    else
        same "$name whole" samtools view --no-PG "$bam" -- samtools view --no-PG "$url"
    fi
    same "$name class=header" samtools view --no-PG -H "$src" -- samtools view --no-PG -H "$url?class=header"
    samtools idxstats "$bam" >"$tmp/idxstats"
    python3 "$root/bindings/htslib/regions.py" "$(cksum <<<"$name" | cut -d' ' -f1)" "$n" "$dataset" \
        <"$tmp/idxstats" | awk -v n="$n" 'NR <= n || NR % 3 == 0 || $0 == "*"' | head -n "$MAX_REGIONS" |
        python3 "$here/regions.py" >"$tmp/regions"
    local nonempty=0
    while IFS=$'\t' read -r r q; do
        same "$name region $r" samtools view "$bam" "$r" -- samtools view "$url?$q"
        [ -s "$tmp/b.out" ] && nonempty=$((nonempty + 1))
    done <"$tmp/regions"
    # Random regions that all came back empty would prove nothing.
    if [ "$nonempty" -gt 0 ]; then ok; else fail "$name: every region was empty"; fi
}

mkdir -p "$tmp/root" "$tmp/outside"
mapfile -t bams < <(grep -v '^\s*$' "$data/MANIFEST")
# Small pieces, so that tickets of every size are cut into several record URLs.
start_server "$tmp/serve.log" --root "$tmp/root" --piece-size 256K
main="$base"
for f in "${bams[@]}"; do
    name="$(basename "$f" .bam)"
    src="$data/$f"
    dataset="$tmp/root/$name.bams3"
    if ! "$BAMS3" convert --chunk-size 256K "$src" "$dataset" >/dev/null 2>"$tmp/convert.err"; then
        fail "$name: bams3 convert: $(head -1 "$tmp/convert.err")"
        continue
    fi
    oracle "$name" "$src"
    check_regions "$name" "$src" "$dataset" "$main/reads/$name.bams3" "$N_RANDOM"
done

touch "$tmp/converted"

# Tickets of large regions have several record URLs, and they still concatenate exactly.
big="$(basename "${bams[0]}" .bam)"
for f in "${bams[@]}"; do
    s="$(stat -c %s "$data/$f")"
    [ "$s" -gt "$(stat -c %s "$data/$big.bam")" ] && big="$(basename "$f" .bam)"
done
n_urls="$(python3 "$here/fetch.py" --describe "$main/reads/$big.bams3")"
if [ "$n_urls" -gt 3 ]; then ok; else fail "$big: the whole-dataset ticket has $n_urls record URLs"; fi

# POST with several regions, and field/tag selection, on ex1 (references seq1, seq2).
oracle ex1 "$data/ex1.bam"
post='{"format":"BAM","regions":[{"referenceName":"seq2","start":100,"end":900},{"referenceName":"seq1","start":0,"end":500},{"referenceName":"*"}]}'
python3 "$here/fetch.py" "$main/reads/ex1.bams3" "$tmp/post.bam" "$post"
same "POST 3 regions" samtools view "$bam" seq2:101-900 seq1:1-500 '*' -- samtools view "$tmp/post.bam"
python3 "$here/fetch.py" "$main/reads/ex1.bams3?referenceName=seq1&start=1000&end=1500&tags=" "$tmp/t.bam"
same "tags= (none)" bash -c "samtools view '$bam' seq1:1001-1500 | cut -f1-11" -- samtools view "$tmp/t.bam"
python3 "$here/fetch.py" "$main/reads/ex1.bams3?referenceName=seq1&start=1000&end=1500&notags=NM,H1" "$tmp/t.bam"
same "notags=NM,H1" bash -c "samtools view '$bam' seq1:1001-1500 | sed -E 's/\tNM:i:[0-9]+//; s/\tH1:i:[0-9]+//'" -- samtools view "$tmp/t.bam"
python3 "$here/fetch.py" "$main/reads/ex1.bams3?referenceName=seq1&start=1000&end=1500&tags=NM" "$tmp/t.bam"
same "tags=NM" bash -c "samtools view '$bam' seq1:1001-1500 | awk 'BEGIN{FS=OFS=\"\\t\"} {l=\$1; for(i=2;i<=11;i++) l=l OFS \$i; for(i=12;i<=NF;i++) if (\$i ~ /^NM:/) l=l OFS \$i; print l}'" -- samtools view "$tmp/t.bam"
python3 "$here/fetch.py" "$main/reads/ex1.bams3?referenceName=seq2&start=0&end=800&fields=QNAME,FLAG,RNAME,POS,CIGAR" "$tmp/t.bam"
same "fields=QNAME,FLAG,RNAME,POS,CIGAR" bash -c "samtools view '$bam' seq2:1-800 | awk 'BEGIN{FS=OFS=\"\\t\"} {\$5=255; \$7=\"*\"; \$8=0; \$9=0; \$10=\"*\"; \$11=\"*\"; print}'" -- samtools view "$tmp/t.bam"
# The server decodes only the streams the fields need: bases without qualities, qualities
# (which keep the bases) with one mate field.
python3 "$here/fetch.py" "$main/reads/ex1.bams3?referenceName=seq2&start=0&end=800&fields=FLAG,RNAME,POS,CIGAR,SEQ" "$tmp/t.bam"
same "fields=FLAG,RNAME,POS,CIGAR,SEQ" bash -c "samtools view '$bam' seq2:1-800 | awk 'BEGIN{FS=OFS=\"\\t\"} {\$1=\"*\"; \$5=255; \$7=\"*\"; \$8=0; \$9=0; \$11=\"*\"; print}'" -- samtools view "$tmp/t.bam"
python3 "$here/fetch.py" "$main/reads/ex1.bams3?referenceName=seq2&start=0&end=800&fields=FLAG,RNAME,POS,CIGAR,QUAL,RNEXT" "$tmp/t.bam"
same "fields=FLAG,RNAME,POS,CIGAR,QUAL,RNEXT" bash -c "samtools view '$bam' seq2:1-800 | awk 'BEGIN{FS=OFS=\"\\t\"} {\$1=\"*\"; \$5=255; \$8=0; \$9=0; print}'" -- samtools view "$tmp/t.bam"

# service-info.
if curl -sf "$main/reads/service-info" | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["type"] == {"group": "org.ga4gh", "artifact": "htsget", "version": "1.3.0"}, s
assert s["htsget"]["datatype"] == "reads" and s["htsget"]["formats"] == ["BAM"], s'; then ok; else fail "service-info"; fi

# Every error class from real bad requests.
t="$main/reads/ex1.bams3"
status "unknown id" 404 NotFound "$main/reads/nope.bams3"
status "unknown reference" 404 NotFound "$t?referenceName=chrZ"
status "CRAM" 400 UnsupportedFormat "$t?format=CRAM"
status "start > end" 400 InvalidRange "$t?referenceName=seq1&start=200&end=100"
status "start not a number" 400 InvalidInput "$t?referenceName=seq1&start=abc"
status "start without reference" 400 InvalidInput "$t?start=10"
status "negative end" 400 InvalidInput "$t?referenceName=seq1&end=-5"
status "tags and notags intersect" 400 InvalidInput "$t?tags=NM,MD&notags=MD"
status "unknown field" 400 InvalidInput "$t?fields=QNAME,BOGUS"
status "class=body" 400 InvalidInput "$t?class=body"
status "POST not JSON" 400 InvalidInput -X POST -H 'Content-Type: application/json' --data 'regions' "$t"
status "POST start > end" 400 InvalidRange -X POST --data '{"regions":[{"referenceName":"seq1","start":9,"end":1}]}' "$t"
status "PUT" 405 MethodNotAllowed -X PUT --data x "$t"
if curl -s -D - -o /dev/null -X DELETE "$t" | tr -d '\r' | grep -qi '^allow: GET, HEAD, POST, OPTIONS$'; then ok; else fail "405 without an Allow header"; fi
status "DELETE a record URL" 405 MethodNotAllowed -X DELETE "$main/data/ex1.bams3?referenceName=seq1"
# HEAD answers as GET, headers only: the ticket's status and type, no body.
got="$(curl -s -I -o "$tmp/head.hdr" -w '%{http_code} %{size_download}' "$t?referenceName=seq1")"
if [ "$got" = "200 0" ] && grep -qi '^content-type: application/vnd.ga4gh.htsget' "$tmp/head.hdr"; then ok; else fail "HEAD of a ticket: $got $(head -3 "$tmp/head.hdr")"; fi
got="$(curl -s -I -o /dev/null -w '%{http_code}' "$main/reads/nope.bams3")"
[ "$got" = 404 ] && ok || fail "HEAD of a missing dataset: $got"
status "unknown route" 404 NotFound "$main/elsewhere"
# referenceMD5 for referenceName: the reference whose @SQ line has that M5.
m5="$(samtools view -H "$data/NA12878.chr22.tiny.bam" | awk -F'\t' '$1 == "@SQ" {for (i = 2; i <= NF; i++) if ($i ~ /^M5:/) {print substr($i, 4); exit}}')"
if [ -n "$m5" ]; then ok; else fail "NA12878.chr22.tiny has no @SQ M5"; fi
oracle NA12878.chr22.tiny "$data/NA12878.chr22.tiny.bam"
same "referenceMD5" samtools view "$bam" q:1001-5000 -- samtools view "$main/reads/NA12878.chr22.tiny.bams3?referenceMD5=$m5&start=1000&end=5000"
same "referenceMD5, upper case" samtools view "$bam" q -- samtools view "$main/reads/NA12878.chr22.tiny.bams3?referenceMD5=${m5^^}"
if [ -x "$venv/bin/htsget" ]; then
    "$venv/bin/htsget" "$main/reads/NA12878.chr22.tiny.bams3" --reference-md5 "$m5" --start 3000 --end 3500 -O "$tmp/md5.bam" 2>"$tmp/md5.err" || true
    same "GA4GH client --reference-md5" samtools view "$bam" q:3001-3500 -- samtools view "$tmp/md5.bam"
fi
status "referenceMD5 and referenceName" 400 InvalidInput "$t?referenceName=seq1&referenceMD5=$m5"
status "referenceMD5 not hex" 400 InvalidInput "$t?referenceMD5=xyz"
status "referenceMD5 of no reference" 404 NotFound "$t?referenceMD5=0123456789abcdef0123456789abcdef"
status "POST referenceMD5 of no reference" 404 NotFound -X POST --data '{"regions":[{"referenceMD5":"0123456789abcdef0123456789abcdef"}]}' "$t"
oracle ex1 "$data/ex1.bam"
# Ids that try to leave the root, plain and percent-encoded; symlinks out of the root.
cp -r "$tmp/root/ex1.bams3" "$tmp/outside/secret.bams3"
ln -s "$tmp/outside/secret.bams3" "$tmp/root/escape.bams3"
ln -s "$tmp/outside" "$tmp/root/outdir"
ln -s "$tmp/root/ex1.bams3" "$tmp/root/alias.bams3"
status "../ escape" 404 NotFound --path-as-is "$main/reads/../outside/secret.bams3"
status "%2e%2e escape" 404 NotFound --path-as-is "$main/reads/%2e%2e/outside/secret.bams3"
status "%2F absolute" 404 NotFound "$main/reads/%2F${tmp//\//%2F}%2Foutside%2Fsecret.bams3"
status "symlink out of the root" 404 NotFound "$main/reads/escape.bams3"
status "directory symlink out of the root" 404 NotFound "$main/reads/outdir/secret.bams3"
status "record URL escape" 404 NotFound --path-as-is "$main/data/%2e%2e/outside/secret.bams3?referenceName=seq1"
same "symlink inside the root" samtools view "$bam" seq1:1-300 -- samtools view "$main/reads/alias.bams3?referenceName=seq1&start=0&end=300"
# CORS: Origin echoed; a preflight accepted.
if curl -s -D - -o /dev/null -H 'Origin: https://igv.example' "$t?referenceName=seq1&end=10" | grep -qi '^access-control-allow-origin: https://igv.example'; then ok; else fail "CORS origin not echoed"; fi
if curl -s -D - -o /dev/null -X OPTIONS -H 'Origin: https://igv.example' -H 'Access-Control-Request-Method: GET' \
    -H 'Access-Control-Request-Headers: range' "$t" | tr -d '\r' | grep -qi '^access-control-allow-headers: range'; then ok; else fail "CORS preflight"; fi
# The server wrote nothing into its root.
if [ -z "$(find "$tmp/root" -mindepth 1 -newer "$tmp/converted" -not -name 'alias.bams3' -not -name 'escape.bams3' -not -name 'outdir' -print -quit)" ]; then ok; else fail "files changed under the root"; fi

# The viewer page. Without --viewer there is none; --viewer needs igv.js.
status "no viewer without --viewer" 404 NotFound "$main/viewer/"
if "$BAMS3" serve --listen 127.0.0.1:0 --root "$tmp/root" --viewer 2>"$tmp/v.err"; then
    fail "--viewer without --viewer-assets started"
else
    grep -q -- '--viewer-assets' "$tmp/v.err" && ok || fail "--viewer alone: $(head -1 "$tmp/v.err")"
fi
if "$BAMS3" serve --listen 127.0.0.1:0 --root "$tmp/root" --viewer --viewer-assets "$tmp/outside" 2>"$tmp/v.err"; then
    fail "--viewer-assets without igv.min.js started"
else
    [ "$(wc -l <"$tmp/v.err")" = 1 ] && grep -q 'npm install igv' "$tmp/v.err" && ok ||
        fail "--viewer-assets without igv.min.js: $(cat "$tmp/v.err")"
fi
igv="$here/node_modules/igv/dist"
start_server "$tmp/serve-viewer.log" --root "$tmp/root" --viewer --viewer-assets "$igv"
viewer="$base"
got="$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "$viewer/viewer")"
[ "$got" = "308 $viewer/viewer/" ] && ok || fail "/viewer redirect: $got"
if curl -sf "$viewer/viewer/" | grep -q '<script src="igv.min.js">'; then ok; else fail "/viewer/ page"; fi
curl -sf "$viewer/viewer/igv.min.js" -o "$tmp/igv.min.js" && cmp -s "$tmp/igv.min.js" "$igv/igv.min.js" && ok ||
    fail "/viewer/igv.min.js differs from $igv/igv.min.js"
samtools view -H "$data/ex1.bam" | python3 -c '
import sys
for l in sys.stdin:
    f = dict(x.split(":", 1) for x in l.rstrip("\n").split("\t")[1:]) if l.startswith("@SQ\t") else None
    if f: print(f["SN"] + "\t" + f["LN"])' >"$tmp/sizes.want"
curl -sf "$viewer/viewer/chromsizes/ex1.bams3" >"$tmp/sizes.got" && [ -s "$tmp/sizes.want" ] && cmp -s "$tmp/sizes.want" "$tmp/sizes.got" && ok ||
    fail "viewer chromsizes: $(head -2 "$tmp/sizes.got")"
status "viewer chromsizes, unknown id" 404 NotFound "$viewer/viewer/chromsizes/nope.bams3"
status "viewer chromsizes, escape" 404 NotFound --path-as-is "$viewer/viewer/chromsizes/%2e%2e/outside/secret.bams3"
status "viewer POST" 405 MethodNotAllowed -X POST --data x "$viewer/viewer/"
# The page in chromium: igv.js' default filter hides unmapped, QC-failed and duplicate reads
# (-F 0x604); na12878-chrM-Y-trunc has duplicates there, NA12878.chr22.tiny a second reference
# naming. One screenshot a page, kept.
for v in "NA12878.chr22.tiny q 2000 6000" "na12878-chrM-Y-trunc chrM 7000 7400"; do
    read -r name chr s e <<<"$v"
    oracle "$name" "$data/$name.bam"
    want="$(samtools view -c -F 0x604 "$bam" "$chr:$((s + 1))-$e")"
    page="$viewer/viewer/?id=$name.bams3&locus=$chr:$((s + 1))-$e"
    if node "$here/viewer.mjs" "$page" "$chr" "$s" "$e" "$artifacts/viewer-$name.png" >"$tmp/viewer.json" 2>"$tmp/viewer.err"; then
        if python3 - "$tmp/viewer.json" "$want" <<'PY'; then ok; else fail "viewer $name $chr:$s-$e: $(cat "$tmp/viewer.json")"; fi
import json, sys
r = json.load(open(sys.argv[1]))
want = int(sys.argv[2])
problems = []
if r["count"] != want: problems.append(f"igv.js shows {r['count']} alignments, samtools counts {want}")
if r["downsampled"]: problems.append(f"{r['downsampled']} reads downsampled")
if r["foreign"]: problems.append(f"requests elsewhere: {r['foreign'][:3]}")
if r["htsget"] < 2: problems.append("no ticket and record URL fetched")
if r["errors"]: problems.append(f"page errors: {r['errors'][:3]}")
print("; ".join(problems), file=sys.stderr)
sys.exit(1 if problems else 0)
PY
        [ -s "$artifacts/viewer-$name.png" ] && ok || fail "viewer $name: no screenshot"
    else
        fail "viewer $name: $(tail -3 "$tmp/viewer.err") $(cat "$tmp/viewer.json")"
    fi
done
oracle ex1 "$data/ex1.bam"

# Bearer auth, a region limit, CORS restricted, an id map.
printf '# tokens\ns3cret\n' >"$tmp/tokens"
printf '{"sample": "%s"}\n' "$tmp/root/ex1.bams3" >"$tmp/ids.json"
start_server "$tmp/serve2.log" --map "$tmp/ids.json" --token-file "$tmp/tokens" --max-region 1000 --cors-origin https://ok.example
t="$base/reads/sample"
status "no token" 403 PermissionDenied "$t?referenceName=seq1&start=0&end=100"
status "wrong token" 401 InvalidAuthentication -H 'Authorization: Bearer nope' "$t?referenceName=seq1&start=0&end=100"
status "region over the limit" 413 PayloadTooLarge -H 'Authorization: Bearer s3cret' "$t?referenceName=seq1&start=0&end=5000"
status "whole reference over the limit" 413 PayloadTooLarge -H 'Authorization: Bearer s3cret' "$t?referenceName=seq1"
status "id not in the map" 404 NotFound -H 'Authorization: Bearer s3cret' "$base/reads/ex1.bams3"
python3 "$here/fetch.py" --token s3cret "$t?referenceName=seq1&start=100&end=900" "$tmp/auth.bam"
same "with a token (record URLs carry it)" samtools view "$bam" seq1:101-900 -- samtools view "$tmp/auth.bam"
url="$(curl -s -H 'Authorization: Bearer s3cret' "$t?referenceName=seq1&start=100&end=900" | python3 -c 'import json,sys; print([u["url"] for u in json.load(sys.stdin)["htsget"]["urls"] if u["url"].startswith("http")][0])')"
status "record URL without a token" 403 PermissionDenied "$url"
if curl -s -D - -o /dev/null -H 'Origin: https://bad.example' "$base/reads/service-info" | grep -qi '^access-control-allow-origin'; then fail "CORS: a foreign origin allowed"; else ok; fi

# The GA4GH reference client downloads the bytes htslib's client concatenates.
if [ -x "$venv/bin/htsget" ]; then
    for q in "referenceName=seq1&start=100&end=1200" "referenceName=seq2" "referenceName=*" ""; do
        rm -f "$tmp/ref.bam"
        mapfile -t cargs < <(python3 -c '
import sys, urllib.parse
q = dict(urllib.parse.parse_qsl(sys.argv[1]))
for k, o in (("referenceName", "--reference-name"), ("start", "--start"), ("end", "--end")):
    if k in q: print(o); print(q[k])' "$q")
        if "$venv/bin/htsget" "$main/reads/ex1.bams3" "${cargs[@]}" -O "$tmp/ref.bam" 2>"$tmp/ref.err"; then
            # Byte for byte the ticket's blocks, fetched independently; and the same records
            # and header as htslib's own client reads from the ticket.
            python3 "$here/fetch.py" "$main/reads/ex1.bams3?$q" "$tmp/cat.bam"
            samtools view --no-PG -h "$main/reads/ex1.bams3?$q" >"$tmp/htslib.sam"
            samtools view --no-PG -h "$tmp/ref.bam" >"$tmp/ref.sam"
            if [ -s "$tmp/ref.bam" ] && cmp -s "$tmp/ref.bam" "$tmp/cat.bam" && cmp -s "$tmp/ref.sam" "$tmp/htslib.sam"; then ok; else fail "htsget client '$q': differs from the ticket's bytes or from htslib's reading"; fi
        else
            fail "htsget client '$q': $(tail -1 "$tmp/ref.err")"
        fi
    done
fi

# A dataset on a loopback moto S3 server.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$moto" -H 127.0.0.1 -p "$port" >"$tmp/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN || true
if ! curl -sf -X PUT -H "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00" \
    "http://127.0.0.1:$port/bams3-htsget" >/dev/null; then
    fail "moto: cannot create a bucket"
    finish
fi
for name in ex1 NA12878.chr22.tiny; do
    if ! "$BAMS3" convert --chunk-size 256K "$data/$name.bam" "s3://bams3-htsget/p/$name.bams3" >/dev/null 2>"$tmp/convert.err"; then
        fail "$name: bams3 convert to S3: $(head -1 "$tmp/convert.err")"
    fi
done
start_server "$tmp/serve3.log" --root s3://bams3-htsget/p --piece-size 256K
for name in ex1 NA12878.chr22.tiny; do
    oracle "$name" "$data/$name.bam"
    check_regions "s3 $name" "$data/$name.bam" "$tmp/root/$name.bams3" "$base/reads/$name.bams3" 10
done
status "s3: unknown id" 404 NotFound "$base/reads/nope.bams3"
status "s3: .. id" 404 NotFound --path-as-is "$base/reads/%2e%2e/p/ex1.bams3"

finish
