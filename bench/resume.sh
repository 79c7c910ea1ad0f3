#!/usr/bin/env bash
# The crash test of issue 14 on the benchmark input (~/.cache/bams3/bench/sorted.bam): an
# uninterrupted conversion, then BENCH_KILLS conversions killed with SIGKILL at seeded random
# moments, each checked (no _metadata.json, `bams3 stats` refuses it), resumed with
# `convert --resume` and compared object for object with the uninterrupted dataset
# (`_metadata.json` without its `created` time). Locally, and with BENCH_S3=1 also onto a
# loopback s3s-fs (tests/fetch-data.sh installs it). Reports the time a resume saves: the
# resumed run's wall time against a full conversion's, and the journal's cost (a conversion
# with checkpoints against one without).
#
#   bench/resume.sh                      # from the repository root
#
# Env knobs: BENCH_KILLS=20, BENCH_SEED=14, BENCH_S3=0, BAMS3=target/release/bams3,
#   BAMS3_BENCH_DIR, BENCH_TMP.
# Exit status 1 when a check failed.
set -euo pipefail
KILLS=${BENCH_KILLS:-20}
SEED=${BENCH_SEED:-14}
USE_S3=${BENCH_S3:-0}
BAMS3=${BAMS3:-target/release/bams3}
DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LOG_TAG=resume
"$HERE/build-input.sh"
IN=$DIR/sorted.bam
[ -x "$BAMS3" ] || { echo "$BAMS3 not found: cargo build --release -p bams3-cli" >&2; exit 2; }
BAMS3=$(cd "$(dirname "$BAMS3")" && pwd)/$(basename "$BAMS3")
TMP=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/bams3-resume.XXXXXX")
S3PID=
cleanup() { [ -z "$S3PID" ] || kill "$S3PID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"

# Objects of a dataset as "key sha256" lines, `_metadata.json` without `created`.
# The directory holding the dataset at LOCATION (s3s-fs keeps its objects as files under S3ROOT).
root_of() { # LOCATION
    if [[ $1 == s3://* ]]; then echo "$S3ROOT/${1#s3://}"; else echo "$1"; fi
}

objects() { # LOCATION
    local root
    root=$(root_of "$1")
    (cd "$root" && find . -type f ! -name '_metadata.json' ! -name '.*' -print0 | sort -z | xargs -0 sha256sum)
    python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); m.pop("created",None); m["source"].pop("file",None); print(json.dumps(m,sort_keys=True))' "$root/_metadata.json"
}

# A seeded random number below $1 (an LCG, as tests/resume.rs).
state=$SEED
# Sets R (not echoed: a command substitution's subshell would lose the new state).
below() { state=$(( (state * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff )); R=$(( (state >> 16) % $1 )); }

crash_test() { # NAME OUTDIR_PREFIX: a reference, then KILLS killed-and-resumed conversions
    local name=$1 prefix=$2 t0 full kill_ms resumed interrupted=0 after_commit=0 finished=0 i out pid said
    t0=$EPOCHREALTIME
    "$BAMS3" "${ARGS[@]}" convert --quiet "$IN" "$prefix/reference.bams3"
    full=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')
    log "$name: uninterrupted conversion $full s"
    objects "$prefix/reference.bams3" > "$TMP/$name.want"
    : > "$TMP/$name.resumes"
    for i in $(seq "$KILLS"); do
        out=$prefix/killed-$i.bams3
        below "$(awk -v f="$full" 'BEGIN{printf "%d", f*900}')"
        kill_ms=$((200 + R))
        "$BAMS3" "${ARGS[@]}" convert --quiet "$IN" "$out" & pid=$!
        sleep "$(awk -v m="$kill_ms" 'BEGIN{printf "%.3f", m/1000}')"
        if kill -9 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            if [ -f "$(root_of "$out")/_metadata.json" ]; then
                # Killed after its commit (`_metadata.json` is written last): complete, and a
                # resume must say there is nothing to do (the comparison below checks the rest).
                after_commit=$((after_commit + 1))
                said=$("$BAMS3" "${ARGS[@]}" convert --resume "$IN" "$out" 2>&1) || true
                [[ $said == *"nothing to do"* ]] ||
                    fail "$name kill $i at $kill_ms ms: killed after its commit, a resume did not say 'nothing to do': $said"
            else
                interrupted=$((interrupted + 1))
                if "$BAMS3" "${ARGS[@]}" stats "$out" >/dev/null 2>&1; then
                    fail "$name kill $i at $kill_ms ms: a dataset without _metadata.json opens as complete"
                fi
            fi
        else
            wait "$pid" || fail "$name kill $i: the conversion failed on its own"
            finished=$((finished + 1))
        fi
        t0=$EPOCHREALTIME
        "$BAMS3" "${ARGS[@]}" convert --quiet --resume "$IN" "$out" || fail "$name kill $i: resume failed"
        resumed=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')
        echo "$kill_ms $resumed" >> "$TMP/$name.resumes"
        if ! cmp -s <(objects "$out") "$TMP/$name.want"; then
            fail "$name kill $i at $kill_ms ms: the resumed dataset differs from the uninterrupted one"
        fi
        log "$name kill $i at $kill_ms ms: resumed in $resumed s"
        "$BAMS3" "${ARGS[@]}" rm --force "$out" >/dev/null 2>&1 || rm -rf "$out"
    done
    # The time a resume takes, as a share of the full conversion (median over the kills).
    local med
    med=$(awk '{print $2}' "$TMP/$name.resumes" | sort -g | awk '{a[NR]=$1} END{print (NR%2)? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
    echo "| $name | $KILLS | $interrupted | $after_commit | $finished | $full s | $med s | $(ratio "$med" "$full") |" >> "$TMP/table"
}

: > "$TMP/table"
ARGS=()
crash_test local "$TMP"
if [ "$USE_S3" = 1 ]; then
    S3FS=${BAMS3_S3S_FS:-$HOME/.cache/bams3/s3s-fs/bin/s3s-fs}
    [ -x "$S3FS" ] || { echo "$S3FS missing: run tests/fetch-data.sh" >&2; exit 2; }
    S3ROOT=$TMP/s3root
    mkdir -p "$S3ROOT/bench"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$S3FS" --host 127.0.0.1 --port "$port" --access-key bench --secret-key benchsecret "$S3ROOT" >/dev/null 2>&1 & S3PID=$!
    sleep 1
    export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecret AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
    ARGS=(--endpoint-url "http://127.0.0.1:$port")
    crash_test s3s-fs "s3://bench"
fi

# The journal's own cost: a conversion without checkpoints (SAM on stdin keeps no journal) is
# not comparable, so compare the default (a checkpoint every 5 s) with one every bin.
t0=$EPOCHREALTIME
"$BAMS3" convert --quiet --checkpoint-every 0 "$IN" "$TMP/every-bin.bams3"
every=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')

echo
echo "Crash test (\`BENCH_KILLS=$KILLS bench/resume.sh\`, load average $(cut -d' ' -f1-3 /proc/loadavg)):"
echo
echo "| where | kills | interrupted | killed after the commit | finished before the kill | uninterrupted | resume (median) | resume / full |"
echo "|---|---|---|---|---|---|---|---|"
cat "$TMP/table"
echo
echo "A conversion with a checkpoint at every bin: $every s."
if [ ${#FAILED[@]} -gt 0 ]; then
    printf 'FAILED: %s\n' "${FAILED[@]}" >&2
    exit 1
fi
