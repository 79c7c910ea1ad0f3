#!/usr/bin/env bash
# BAMS3 demo: build the `bams3` command, convert a small real BAM into a BAMS3
# dataset, look at it, query a region and count its reads, then export it back to
# BAM. If samtools is installed, the same region is counted with samtools too.
#
# Needs only Rust (cargo >= 1.94.1, which the AWS SDK needs); installs nothing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"

if ! command -v cargo >/dev/null 2>&1; then
    echo "demo.sh: cargo not found: install Rust 1.94.1 or newer (https://rustup.rs)" >&2
    exit 1
fi

echo "== building bams3 (release)"
cargo build --release --quiet -p bams3-cli
bams3="$root/target/release/bams3"

input="$root/examples/data/NA12878.chr22.tiny.bam"
region="q:5000-6000"
work="$(mktemp -d "${TMPDIR:-/tmp}/bams3-demo.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== bams3 convert $input"
"$bams3" convert "$input" "$work/tiny.bams3"
echo "dataset files:"
(cd "$work/tiny.bams3" && find . -type f | sort | sed 's/^/  /')

echo "== bams3 validate"
"$bams3" validate "$work/tiny.bams3"

echo "== bams3 stats"
"$bams3" stats "$work/tiny.bams3"

echo "== bams3 query $region (first 3 records)"
"$bams3" query "$work/tiny.bams3" "$region" >"$work/region.sam"
head -n 3 "$work/region.sam" | cut -c1-120

count=$("$bams3" query -c "$work/tiny.bams3" "$region")
echo "bams3 query -c $region: $count reads"

if command -v samtools >/dev/null 2>&1; then
    cp "$input" "$work/tiny.bam"
    samtools index "$work/tiny.bam"
    expected=$(samtools view -c "$work/tiny.bam" "$region")
    echo "samtools view -c $region: $expected reads"
    if [ "$count" != "$expected" ]; then
        echo "demo.sh: bams3 and samtools disagree" >&2
        exit 1
    fi
fi

echo "== bams3 export back to BAM"
"$bams3" export "$work/tiny.bams3" "$work/roundtrip.bam"
ls -l "$input" "$work/roundtrip.bam" | awk '{print "  " $5 " bytes  " $NF}'
echo "done"
