#!/usr/bin/env bash
# The C/C++ suite, run by `make -C bindings test` (which sets BUILD, BAMS3 and VALGRIND):
#  1. test_api: every C function, including misuse, with the documented codes;
#  2. test_bams3: the C++ wrapper;
#  3. mini_aligner (two writer threads) gives the same dataset as `bams3 convert`;
#  4. the C++ query example prints exactly what `samtools view` prints for the same regions,
#     on examples/data and on the BAMs in $BAMS3_TEST_DATA (required).
# Every program runs under $VALGRIND (empty to run natively).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
: "${BUILD:=$here/build}" "${BAMS3:=$root/target/release/bams3}"
VALGRIND="${VALGRIND-}"
read -r -a V <<<"$VALGRIND"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*" >&2
}
# run NAME CMD...: one check; the command's own output goes to the terminal on failure only.
run() {
    local name="$1"
    shift
    if "$@" >"$tmp/out.log" 2>&1; then ok; else
        cat "$tmp/out.log" >&2
        fail "$name"
    fi
}
# same NAME FILE1 FILE2
same() {
    if cmp -s "$2" "$3"; then ok; else
        diff "$2" "$3" | head -5 >&2 || true
        fail "$1: $2 and $3 differ"
    fi
}

tiny="$root/examples/data/NA12878.chr22.tiny.bam"
"$BAMS3" convert --quiet "$tiny" "$tmp/tiny-cli"

echo "== test_api"
mkdir "$tmp/api"
run test_api "${V[@]}" "$BUILD/test_api" "$tmp/api" "$tmp/tiny-cli"
grep -h "passed" "$tmp/out.log" || true

echo "== test_batch"
run test_batch "${V[@]}" "$BUILD/test_batch" "$tmp/tiny-cli"
grep -h "passed" "$tmp/out.log" || true
# The archive profile links mate pairs: a query of names then decodes the mate stream too.
"$BAMS3" convert --quiet --profile archive "$tiny" "$tmp/tiny-archive"
run "test_batch (archive profile)" "${V[@]}" "$BUILD/test_batch" "$tmp/tiny-archive"
grep -h "passed" "$tmp/out.log" || true

echo "== test_bams3 (C++)"
mkdir "$tmp/cpp"
run test_bams3 "${V[@]}" "$BUILD/test_bams3" "$tmp/cpp"
grep -h "passed" "$tmp/out.log" || true

echo "== mini_aligner vs bams3 convert"
samtools view -h --no-PG "$tiny" >"$tmp/tiny.sam"
run mini_aligner "${V[@]}" "$BUILD/mini_aligner" "$tmp/tiny-c" <"$tmp/tiny.sam"
"$BAMS3" query -h "$tmp/tiny-c" >"$tmp/c.sam" || fail "bams3 query of the C dataset"
"$BAMS3" query -h "$tmp/tiny-cli" >"$tmp/cli.sam" || fail "bams3 query of the CLI dataset"
# Two threads add records concurrently, so records at the same position may be stored in
# either order (only the order by position is defined): compare the records as sorted sets, and
# check the positions come out sorted.
sort "$tmp/c.sam" >"$tmp/c.sorted"
sort "$tmp/cli.sam" >"$tmp/cli.sorted"
sort "$tmp/tiny.sam" >"$tmp/tiny.sorted"
same "C writer vs bams3 convert (records)" "$tmp/c.sorted" "$tmp/cli.sorted"
same "C writer vs the input SAM (records)" "$tmp/c.sorted" "$tmp/tiny.sorted"
cut -f3,4 "$tmp/c.sam" | grep -v '^@' >"$tmp/c.pos"
cut -f3,4 "$tmp/tiny.sam" | grep -v '^@' >"$tmp/tiny.pos"
same "C writer vs the input SAM (positions in order)" "$tmp/c.pos" "$tmp/tiny.pos"

echo "== htslib_import (bam1_t -> bams3_writer_add_bam) vs bams3 convert"
if [ -x "$BUILD/htslib_import" ]; then
    run htslib_import "${V[@]}" "$BUILD/htslib_import" "$tiny" "$tmp/tiny-hts"
    "$BAMS3" query -h "$tmp/tiny-hts" >"$tmp/hts.sam" || fail "bams3 query of the htslib dataset"
    same "htslib_import vs bams3 convert" "$tmp/hts.sam" "$tmp/cli.sam"
else
    fail "htslib_import was not built (libhts-dev missing?)"
fi

# compare_regions BAM DATASET USE_VALGRIND ORDER REGION...: the C++ example against samtools
# view; ORDER "exact", or "sorted" for datasets written from several threads (see above).
compare_regions() {
    local bam="$1" ds="$2" vg="$3" order="$4"
    shift 4
    local bai="$tmp/$(basename "$bam").bai"
    # An unsorted BAM cannot be indexed: compare against its sorted copy, as record sets
    # (ties at one position may be ordered differently by samtools sort and by the merge).
    if ! samtools index -o "$bai" "$bam" 2>/dev/null; then
        local sorted_bam="$tmp/$(basename "$bam" .bam).sorted.bam"
        samtools sort -o "$sorted_bam" "$bam" 2>/dev/null || {
            fail "samtools sort $(basename "$bam")"
            return
        }
        bam="$sorted_bam"
        # samtools sort rewrites the header (SO, @PG): compare the records alone.
        order=records
        bai="$sorted_bam.bai"
        samtools index -o "$bai" "$bam" || {
            fail "samtools index of the sorted $(basename "$bam")"
            return
        }
    fi
    local q=("$BUILD/query")
    [ "$vg" = yes ] && q=("${V[@]}" "$BUILD/query")
    local region i=0
    for region in "$@"; do
        i=$((i + 1))
        samtools view --no-PG -h -X "$bam" "$bai" "$region" >"$tmp/want.sam"
        if "${q[@]}" -h "$ds" "$region" >"$tmp/got.sam" 2>"$tmp/err.log"; then
            if [ "$order" = records ]; then
                grep -v '^@' "$tmp/got.sam" | sort -o "$tmp/got.sam" || true
                grep -v '^@' "$tmp/want.sam" | sort -o "$tmp/want.sam" || true
            elif [ "$order" = sorted ]; then
                sort -o "$tmp/got.sam" "$tmp/got.sam"
                sort -o "$tmp/want.sam" "$tmp/want.sam"
            fi
            same "query $(basename "$bam") '$region'" "$tmp/got.sam" "$tmp/want.sam"
        else
            cat "$tmp/err.log" >&2
            fail "query $(basename "$bam") '$region'"
        fi
    done
}

echo "== C++ query vs samtools view"
compare_regions "$tiny" "$tmp/tiny-cli" yes exact q q:1-1 q:100-200 q:5000-6000 q:9,000-9,100 q:12000-12356 q:12356 '{q}:3000-3001' '*'
compare_regions "$tiny" "$tmp/tiny-c" yes sorted q q:1-1 q:100-200 q:5000-6000 q:9,000-9,100 q:12000-12356 q:12356 '{q}:3000-3001' '*'
# A bad region is an error with the library's message, as with samtools.
if "${V[@]}" "$BUILD/query" "$tmp/tiny-c" 'nope:1-10' >/dev/null 2>"$tmp/err.log"; then
    fail "query of an unknown reference succeeded"
elif grep -q "nope" "$tmp/err.log"; then ok; else fail "no message for an unknown reference"; fi

echo "== docs/C_API.md example"
awk '/^```c$/ {on = 1; next} on && /^```$/ {exit} on' "$root/docs/C_API.md" >"$tmp/doc_example.c"
if ${CC:-cc} -std=c11 -Wall -Werror -I"$root/include" -o "$tmp/doc_example" "$tmp/doc_example.c" \
    -L"$BUILD/lib" -Wl,-rpath,"$BUILD/lib" -lbams3; then
    (cd "$tmp" && "${V[@]}" ./doc_example >doc_example.out 2>&1) && grep -q '^read1	10001	4M$' "$tmp/doc_example.out" &&
        grep -q '"total_reads": 1' "$tmp/doc_example.out" && ok || {
        cat "$tmp/doc_example.out" >&2
        fail "docs/C_API.md example"
    }
else
    fail "docs/C_API.md example does not compile"
fi

data="${BAMS3_TEST_DATA:-}"
if [ -z "$data" ] || [ ! -s "$data/MANIFEST" ]; then
    fail "no test data: set BAMS3_TEST_DATA (tests/fetch-data.sh fills it)"
else
    echo "== C++ query vs samtools view on \$BAMS3_TEST_DATA"
    for bam in "$data"/*.bam; do
        [ -f "$bam" ] || continue
        name="$(basename "$bam" .bam)"
        "$BAMS3" convert --quiet "$bam" "$tmp/$name" || {
            fail "bams3 convert $name"
            continue
        }
        # Regions from the data: each reference with reads, whole and a window around its
        # first read; plus the unplaced reads. Natively (valgrind on these sizes is slow).
        regions=()
        while IFS=$'\t' read -r ref first; do
            regions+=("$ref" "$ref:$first-$((first + 5000))")
        done < <(samtools view "$bam" | awk -F'\t' '$3 != "*" && !seen[$3]++ {print $3 "\t" $4}' | head -3)
        regions+=('*')
        if [ -x "$BUILD/htslib_import" ]; then
            "$BUILD/htslib_import" "$bam" "$tmp/$name-hts" || fail "htslib_import $name"
            "$BAMS3" query -h "$tmp/$name" >"$tmp/a.sam"
            "$BAMS3" query -h "$tmp/$name-hts" >"$tmp/b.sam"
            same "htslib_import $name vs bams3 convert" "$tmp/b.sam" "$tmp/a.sam"
            rm -rf "${tmp:?}/$name-hts"
        fi
        echo "   $name: ${#regions[@]} regions"
        compare_regions "$bam" "$tmp/$name" no exact "${regions[@]}"
        rm -rf "${tmp:?}/$name"
    done
fi

echo "bindings: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
