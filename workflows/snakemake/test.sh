#!/usr/bin/env bash
# Tests of sharded conversion (issue 15) through the Snakemake workflow, on a loopback S3
# server (moto): 2 real samples (a subset of drop-seq's human/mouse STAR BAM and cnvkit's
# NA12878) x 4 shards with `--cores 2`; each dataset must equal a single-process
# `bams3 convert` of the same input object for object (chunk bytes, index, header; the
# metadata but its time), export the input's records exactly, and validate. Then: a shard
# killed with SIGKILL (and the debris a kill leaves) re-runs to the same dataset; finalize
# with a shard missing, or with a shard of another input, fails naming the shard and writes
# nothing; `bams3 rm` removes a half-done sharded conversion; an input without an index is
# refused in one line. Installs Snakemake (PyPI, pinned) into ~/.cache/bams3/snakemake-venv.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
BAMS3="${BAMS3:-$root/target/release/bams3}"
data="${BAMS3_TEST_DATA:-$HOME/.cache/bams3/test-data}"
moto_venv="${BAMS3_MOTO_VENV:-$HOME/.cache/bams3/moto-venv}"
venv="${BAMS3_SNAKEMAKE_VENV:-$HOME/.cache/bams3/snakemake-venv}"
SNAKEMAKE_VERSION=9.27.1
start_time=$(date +%s)

passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*" >&2
}
finish() {
    echo "workflows/snakemake/test.sh: $(($(date +%s) - start_time)) s" >&2
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
check() { # check DESCRIPTION COMMAND...: one test
    if "${@:2}"; then ok; else fail "$1"; fi
}

# Prerequisites: installed when missing, a failure when they cannot be.
missing=()
command -v samtools >/dev/null || missing+=(samtools)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for f in "$BAMS3" "$data/human_mouse_smaller.bam" "$data/na12878-chrM-Y-trunc.bam" "$moto_venv/bin/moto_server"; do
    if [ ! -e "$f" ]; then
        fail "$f is missing (build the workspace; tests/fetch-data.sh installs test data and moto)"
        finish
    fi
done
if [ "$("$venv/bin/snakemake" --version 2>/dev/null)" != "$SNAKEMAKE_VERSION" ]; then
    python3 -m venv "$venv" && "$venv/bin/pip" install -q "snakemake==$SNAKEMAKE_VERSION" >/dev/null ||
        { fail "pip install snakemake==$SNAKEMAKE_VERSION into $venv"; finish; }
fi
py="$moto_venv/bin/python"
s3() { "$py" "$here/test/s3objects.py" "$@"; }
# refused WHAT MESSAGE PREFIX: `bams3 finalize s3://cohort/PREFIX` must fail with MESSAGE
# (grep pattern) and leave the objects under PREFIX as they were.
refused() {
    local before
    before=$(s3 keys cohort "$3" | md5sum)
    if "$BAMS3" finalize "s3://cohort/${3%/}" 2>"$tmp/err"; then
        fail "finalize $1 succeeded"
    else
        check "finalize $1 says '$2': $(cat "$tmp/err")" grep -q "$2" "$tmp/err"
    fi
    check "a failed finalize $1 writes nothing" test "$(s3 keys cohort "$3" | md5sum)" = "$before"
}

tmp="$(mktemp -d)"
moto_pid=
cleanup() {
    [ -z "$moto_pid" ] || kill "$moto_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# moto on a free loopback port; every bams3 and boto3 call below reaches it by the environment.
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$moto_venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$tmp/moto.log" 2>&1 &
moto_pid=$!
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
for _ in $(seq 100); do
    curl -s -o /dev/null "$AWS_ENDPOINT_URL" 2>/dev/null && break
    sleep 0.1
done

# The samples: real BAMs, cut to a few references so that 4 shards x 2 samples stay quick on
# moto: A holds 3 human chromosomes and every unplaced read of the STAR BAM; B is the whole
# NA12878 file (chrM deep enough to be split into parts). C (another input with A's header)
# is for the mixed-shards test.
cp "$data/human_mouse_smaller.bam" "$tmp/hm.bam"
samtools index "$tmp/hm.bam"
samtools view -b -o "$tmp/A.bam" "$tmp/hm.bam" HUMAN_17 HUMAN_19 HUMAN_22 '*'
samtools view -b -o "$tmp/C.bam" "$tmp/hm.bam" MOUSE_11 MOUSE_19
cp "$data/na12878-chrM-Y-trunc.bam" "$tmp/B.bam"
printf 'sample\tinput\n' >"$tmp/samples.tsv"
for s in A B C; do
    samtools index "$tmp/$s.bam"
    s3 put cohort "in/$s.bam" "$tmp/$s.bam"
    s3 put cohort "in/$s.bam.bai" "$tmp/$s.bam.bai"
done
printf 'A\ts3://cohort/in/A.bam\nB\ts3://cohort/in/B.bam\n' >>"$tmp/samples.tsv"
OPTIONS="--chunk-size 256K"
cat >"$tmp/config.yaml" <<YAML
samples: $tmp/samples.tsv
output: s3://cohort/datasets
shards: 4
bams3: $BAMS3
convert_options: "$OPTIONS"
threads_per_shard: 1
flags: $tmp/flags
YAML

# 1. The workflow: 8 shard jobs and 2 finalize jobs on 2 cores.
if "$venv/bin/snakemake" -s "$here/Snakefile" --directory "$tmp" --cores 2 --quiet all >"$tmp/snakemake.log" 2>&1; then
    ok
else
    fail "snakemake run (log: $(tail -5 "$tmp/snakemake.log"))"
    finish
fi
check "8 shards and 2 finalize steps ran" test "$(ls "$tmp"/flags/*/shard-*-of-4 "$tmp"/flags/*/finalized | wc -l)" -eq 10
for s in A B; do
    "$BAMS3" convert --quiet $OPTIONS "s3://cohort/in/$s.bam" "s3://cohort/single/$s.bams3"
    check "$s: sharded = single-process (objects, chunk bytes, index entries)" \
        s3 same cohort "datasets/$s.bams3/" "single/$s.bams3/"
    check "$s: validate" "$BAMS3" validate "s3://cohort/datasets/$s.bams3"
    "$BAMS3" export --quiet "s3://cohort/datasets/$s.bams3" "$tmp/$s.out.bam"
    check "$s: exported records = samtools view of the input" \
        cmp -s <(samtools view "$tmp/$s.out.bam") <(samtools view "$tmp/$s.bam")
    # "read R of S input bytes": each shard reads its share, not the whole input.
    check "$s: each shard reads less than the whole input: $(grep -ho 'read [0-9]* of [0-9]*' "$tmp"/flags/$s/shard-*.log | tr '\n' ' ')" \
        awk '{ if ($2 >= $4) bad = 1 } END { exit bad }' <(grep -ho 'read [0-9]* of [0-9]*' "$tmp"/flags/$s/shard-*.log)
done

# 2. A killed shard: all 4 shards of A, then shard 2 again, killed (SIGKILL) part-way.
K=s3://cohort/killed/A.bams3
for k in 1 2 3 4; do "$BAMS3" convert --quiet $OPTIONS --shard "$k/4" s3://cohort/in/A.bam "$K"; done
s3 get cohort killed/A.bams3/_shards/2-of-4.json >"$tmp/manifest.json"
own=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["chunks"][0]["entry"]["path"])' "$tmp/manifest.json")
"$BAMS3" convert --quiet $OPTIONS --shard 2/4 s3://cohort/in/A.bam "$K" &
pid=$!
sleep "0.$((RANDOM % 8 + 1))"
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
# Whatever the kill left, make it what a kill before the manifest leaves (the shard may have
# finished first), plus what an earlier run with other options leaves in shard 2's bins: a
# chunk part this run does not write.
s3 rm cohort killed/A.bams3/_shards/2-of-4.json
echo "left by a crash" >"$tmp/stray"
s3 put cohort "killed/A.bams3/${own%.chunk}.p7.chunk" "$tmp/stray"
refused "with shard 2 killed" 'missing shard(s) 2/4' killed/A.bams3/
check "the killed shard re-runs" "$BAMS3" convert --quiet $OPTIONS --shard 2/4 s3://cohort/in/A.bam "$K"
check "finalize after the re-run" "$BAMS3" finalize --quiet "$K"
check "a killed shard re-run gives the same dataset" s3 same cohort killed/A.bams3/ single/A.bams3/

# 3. Shards of another input: shards 1-3 of A and shard 4 of C (same header, other reads).
X=s3://cohort/mixed/A.bams3
for k in 1 2 3; do "$BAMS3" convert --quiet $OPTIONS --shard "$k/4" s3://cohort/in/A.bam "$X"; done
"$BAMS3" convert --quiet $OPTIONS --shard 4/4 s3://cohort/in/C.bam "$X"
refused "of shards from two inputs" 'shard 4/4 is from another input' mixed/A.bams3/
# A shard missing altogether.
"$BAMS3" rm "$X" 2>/dev/null
check "bams3 rm removes a half-done sharded conversion" test -z "$(s3 keys cohort mixed/A.bams3/)"
for k in 1 2 4; do "$BAMS3" convert --quiet $OPTIONS --shard "$k/4" s3://cohort/in/A.bam "$X"; done
refused "with shard 3 missing" 'missing shard(s) 3/4' mixed/A.bams3/

# 4. No index: refused in one line, nothing written.
cp "$tmp/B.bam" "$tmp/noindex.bam"
if "$BAMS3" convert --shard 1/2 "$tmp/noindex.bam" "$tmp/noindex.bams3" 2>"$tmp/err"; then
    fail "a shard of an unindexed BAM converted"
else
    check "an unindexed input is refused in one line: $(cat "$tmp/err")" \
        test "$(wc -l <"$tmp/err")" -eq 1 -a ! -e "$tmp/noindex.bams3"
fi
finish
