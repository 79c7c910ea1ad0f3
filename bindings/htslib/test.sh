#!/usr/bin/env bash
# Tests of the htslib plugin (hfile_bams3.so) with Debian's own samtools 1.16: for every real
# test BAM (~/.cache/bams3/test-data/MANIFEST) and a dataset from unsorted input, samtools on
# bams3:///... must print exactly what it prints on the source BAM (samtools-sorted for
# unsorted input): view -h, view -c, flagstat, idxstats, depth, depth -a -r, quickcheck, seeded
# random and edge regions, view -M; then the same on bams3+s3:// against a loopback moto
# server; a plain htslib program using sam_itr_querys; and the read-only cwd behaviour.
#
# Every samtools run happens in a fresh working directory per dataset, because htslib saves
# the index it fetches for a URL in the cwd and reuses it (docs/HTSLIB.md).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
BAMS3="${BAMS3:-$root/target/release/bams3}"
data="${BAMS3_TEST_DATA:-$HOME/.cache/bams3/test-data}"
moto="${BAMS3_MOTO_SERVER:-$HOME/.cache/bams3/moto-venv/bin/moto_server}"
N_RANDOM="${N_RANDOM:-40}"

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
{ command -v pkg-config >/dev/null && pkg-config --exists htslib; } || missing+=(libhts-dev pkg-config)
command -v cc >/dev/null || missing+=(gcc libc6-dev)
command -v make >/dev/null || missing+=(make)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for f in "$BAMS3" "$data/MANIFEST" "$moto"; do
    if [ ! -e "$f" ]; then
        fail "$f is missing (build the workspace; tests/fetch-data.sh installs test data and moto)"
        finish
    fi
done
if ! make -C "$here" --quiet >/dev/null; then
    fail "make -C bindings/htslib"
    finish
fi
export HTS_PATH="$here:"

tmp="$(mktemp -d)"
moto_pid=
cleanup() {
    if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi
    chmod -R u+w "$tmp" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
export XDG_CACHE_HOME="$tmp/cache"

# same NAME CWD ARGS...: `samtools ARGS` with @IN@ replaced by $bam and by $url print the same
# stdout and exit the same (run in CWD, a directory of its own per URL).
same() {
    local name="$1" cwd="$2"
    shift 2
    local a=() b=() x ra=0 rb=0
    for x in "$@"; do
        a+=("${x//@IN@/$bam}")
        b+=("${x//@IN@/$url}")
    done
    (cd "$tmp/oracle-cwd" && samtools "${a[@]}") >"$tmp/a.out" 2>"$tmp/a.err" || ra=$?
    (cd "$cwd" && samtools "${b[@]}") >"$tmp/b.out" 2>"$tmp/b.err" || rb=$?
    # Outputs that name their input (quickcheck -v) name it as @IN@.
    sed -i "s|$bam|@IN@|g" "$tmp/a.out"
    sed -i "s|$url|@IN@|g" "$tmp/b.out"
    if [ "$ra" = "$rb" ] && cmp -s "$tmp/a.out" "$tmp/b.out"; then
        ok
    else
        fail "$name: samtools ${b[*]} (exit $rb, BAM $ra; $(wc -l <"$tmp/b.out") lines vs $(wc -l <"$tmp/a.out"))"
        diff "$tmp/a.out" "$tmp/b.out" | head -5 >&2 || true
        head -3 "$tmp/b.err" >&2 || true
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

# check_all NAME SRC URL CWD N: every comparison for one dataset, N random regions.
check_all() {
    local name="$1" src="$2" cwd="$4" n="$5" r
    url="$3"
    mkdir -p "$cwd"
    if [ "$sorted" = 1 ]; then
        same "$name view -h" "$cwd" view --no-PG -h @IN@
    else
        # The header is the source's (samtools sort rewrites @HD); the records samtools-sorted.
        local saved="$bam"
        bam="$src"
        same "$name view -H" "$cwd" view --no-PG -H @IN@
        bam="$saved"
        same "$name view" "$cwd" view --no-PG @IN@
    fi
    same "$name view -c" "$cwd" view -c @IN@
    same "$name flagstat" "$cwd" flagstat @IN@
    same "$name idxstats" "$cwd" idxstats @IN@
    same "$name depth" "$cwd" depth @IN@
    same "$name quickcheck" "$cwd" quickcheck -v @IN@
    samtools idxstats "$bam" >"$tmp/idxstats"
    local first
    first="$(awk -F'\t' '$1 != "*" && $3 + $4 > 0 {print $1; exit}' "$tmp/idxstats")"
    if [ -n "$first" ]; then
        same "$name depth -a -r" "$cwd" depth -a -r "$first:1-5000" @IN@
    fi
    python3 "$here/regions.py" "$(cksum <<<"$name" | cut -d' ' -f1)" "$n" "$dataset" \
        <"$tmp/idxstats" >"$tmp/regions"
    local nonempty=0
    while IFS= read -r r; do
        same "$name region $r" "$cwd" view @IN@ "$r"
        [ -s "$tmp/b.out" ] && nonempty=$((nonempty + 1))
    done <"$tmp/regions"
    # Random regions that all came back empty would prove nothing.
    if [ "$nonempty" -gt 0 ]; then ok; else fail "$name: every region was empty"; fi
    # Several overlapping regions at once, with and without -M.
    mapfile -t some < <(head -n 12 "$tmp/regions" | grep -v '^\*$' || true)
    if [ "${#some[@]}" -gt 0 ]; then
        same "$name view -M" "$cwd" view -M @IN@ "${some[@]}"
        same "$name view (several)" "$cwd" view @IN@ "${some[@]}"
    fi
    some+=('*')
    # The same through a program that calls sam_itr_querys itself.
    local ra=0 rb=0
    (cd "$tmp/oracle-cwd" && samtools view "$bam" "${some[@]}") >"$tmp/a.out" 2>&1 || ra=$?
    (cd "$cwd" && "$here/build/region_query" "$url" "${some[@]}") >"$tmp/b.out" 2>"$tmp/b.err" || rb=$?
    if [ "$ra" = 0 ] && [ "$rb" = 0 ] && cmp -s "$tmp/a.out" "$tmp/b.out"; then
        ok
    else
        fail "$name: region_query (sam_itr_querys) differs from samtools view (exit $rb)"
        head -3 "$tmp/b.err" >&2 || true
    fi
}

mkdir -p "$tmp/oracle-cwd" "$tmp/ds"
mapfile -t bams < <(grep -v '^\s*$' "$data/MANIFEST")
for f in "${bams[@]}"; do
    name="$(basename "$f" .bam)"
    src="$data/$f"
    dataset="$tmp/ds/$name.bams3"
    if ! "$BAMS3" convert --chunk-size 256K "$src" "$dataset" >/dev/null 2>"$tmp/convert.err"; then
        fail "$name: bams3 convert: $(head -1 "$tmp/convert.err")"
        continue
    fi
    oracle "$name" "$src"
    check_all "$name" "$src" "bams3://$dataset" "$tmp/cwd/$name" "$N_RANDOM"
done

# A dataset from unsorted input is served coordinate-sorted.
if [ ! -e "$data/ex1_unsort.bam" ]; then
    fail "ex1_unsort.bam is not in $data"
else
    # (Bins of several separately sorted parts, merged into one unit, are covered by the
    # bams3-core unit tests: this input is too small to spill parts.)
    name=ex1_unsort_stdin
    src="$data/ex1_unsort.bam"
    dataset="$tmp/ds/$name.bams3"
    if ! samtools view --no-PG -h "$src" | "$BAMS3" convert --chunk-size 256K - "$dataset" >/dev/null 2>"$tmp/convert.err"; then
        fail "$name: bams3 convert from stdin: $(head -1 "$tmp/convert.err")"
    fi
    oracle "$name" "$src"
    if [ "$sorted" = 0 ]; then ok; else fail "$name: the unsorted input sorts"; fi
    check_all "$name" "$src" "bams3://$dataset" "$tmp/cwd/$name" "$N_RANDOM"
fi

# Writing through the plugin is refused.
if samtools view -b -o "bams3://$tmp/ds/new.bams3" "$data/ex1.bam" 2>"$tmp/w.err"; then
    fail "writing to a bams3:// URL succeeded"
elif grep -q "read-only" "$tmp/w.err"; then
    ok
else
    fail "writing to a bams3:// URL: no read-only message: $(head -2 "$tmp/w.err")"
fi

# A read-only working directory: htslib cannot save the fetched index there. /proc refuses
# new files even to root (CI runs as root, so a chmod would prove nothing).
url="bams3://$tmp/ds/ex1.bams3"
bam="$tmp/oracle/ex1.bam"
if (cd /proc && samtools view -c "$url" seq1:100-200) >/dev/null 2>"$tmp/ro.err"; then
    fail "read-only cwd: a region query without -X succeeded (docs/HTSLIB.md says it fails)"
else
    ok
fi
# With -X and the index URL, htslib loads the index straight from the plugin (it still
# complains that it cannot save a copy).
ra=0
rb=0
samtools view "$bam" seq1:100-200 seq2:1000-1100 >"$tmp/a.out" || ra=$?
(cd /proc && samtools view -X "$url" "$url.csi" seq1:100-200 seq2:1000-1100) >"$tmp/b.out" 2>/dev/null || rb=$?
if [ "$ra$rb" = 00 ] && [ -s "$tmp/a.out" ] && cmp -s "$tmp/a.out" "$tmp/b.out"; then ok; else fail "read-only cwd with -X URL URL.csi (exit $rb)"; fi
# And a fetched index saved elsewhere works with -X too.
mkdir -p "$tmp/idx"
(cd "$tmp/idx" && samtools view -c "$url" seq1:1-2 >/dev/null)
if [ -s "$tmp/idx/ex1.bams3.csi" ]; then ok; else fail "the fetched index is not saved in the cwd"; fi
rb=0
(cd /proc && samtools view -X "$url" "$tmp/idx/ex1.bams3.csi" seq1:100-200 seq2:1000-1100) >"$tmp/b.out" 2>"$tmp/b.err" || rb=$?
if [ "$rb" = 0 ] && cmp -s "$tmp/a.out" "$tmp/b.out" && [ ! -s "$tmp/b.err" ]; then ok; else fail "read-only cwd with -X and a local index (exit $rb)"; fi
# Without a region, no index is needed at all.
same "read-only cwd, whole file" /proc view -c @IN@

# Upstream v0.1/v0.2 datasets: a one-line message naming `bams3 upgrade`.
for legacy in "$root"/tests/fixtures/legacy/v01_go "$root"/tests/fixtures/legacy/v02_go; do
    if [ ! -e "$legacy/_metadata.json" ]; then
        fail "legacy fixture $legacy is missing"
    elif samtools view -c "bams3://$legacy" 2>"$tmp/l.err" >/dev/null; then
        fail "a legacy dataset opened through the plugin: $legacy"
    elif grep -q "bams3 upgrade" "$tmp/l.err"; then
        ok
    else
        fail "legacy $legacy: $(head -1 "$tmp/l.err")"
    fi
done

# The same on S3: a loopback moto server.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$moto" -H 127.0.0.1 -p "$port" >"$tmp/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" && break
    sleep 0.1
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN || true
if ! curl -sf -X PUT -H "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00" \
    "http://127.0.0.1:$port/bams3-htslib" >/dev/null; then
    fail "moto: cannot create a bucket"
    finish
fi
for name in ex1 NA12878.chr22.tiny ex1_unsort; do
    src="$data/$name.bam"
    [ -e "$src" ] || { fail "$src missing"; continue; }
    dataset="$tmp/ds/$name.bams3"
    if ! "$BAMS3" convert --chunk-size 256K "$src" "s3://bams3-htslib/$name.bams3" >/dev/null 2>"$tmp/convert.err"; then
        fail "$name: bams3 convert to S3: $(head -1 "$tmp/convert.err")"
        continue
    fi
    oracle "$name" "$src"
    check_all "s3 $name" "$src" "bams3+s3://bams3-htslib/$name.bams3" "$tmp/cwd-s3/$name" 20
done

finish
