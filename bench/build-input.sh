#!/usr/bin/env bash
# Build the BAMS3 benchmark input once and cache it outside the repository.
#
#   bench/build-input.sh            # builds (or reuses) ${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
#
# Outputs in $BAMS3_BENCH_DIR:
#   ref.fa (+ .fai)        70 Mbp GRCh37 chrX (first 70 Mbp), from Debian's smalt-examples
#   sorted.bam (+ .bai)    ART HiSeq 2x150 bp reads, minimap2 -ax sr, samtools sort
#   name.bam               samtools sort -n of the same records
#   shuffled.bam           the same records in a fixed pseudo-random order (an aligner's output)
#
# Env knobs: BAMS3_BENCH_DIR, BENCH_COVERAGE (ART fold coverage, default 10 -> ~4.7M reads),
#            BENCH_THREADS (default 2).
# Idempotent: every step is skipped when its output exists (outputs are written to a
# temporary name and renamed, so an interrupted run never leaves a half file behind).
set -euo pipefail

DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
COV=${BENCH_COVERAGE:-10}
T=${BENCH_THREADS:-2}
mkdir -p "$DIR"
cd "$DIR"

log() { printf '[build-input %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
step_start=0
begin() { step_start=$SECONDS; log "start: $*"; }
end() { log "done in $((SECONDS - step_start)) s: $*"; }
total_start=$SECONDS

# ---------------------------------------------------------------- tools
apt_updated=0
apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ $apt_updated -eq 0 ]; then apt-get update -qq; apt_updated=1; fi
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
apt_install samtools minimap2 art-nextgen-simulation-tools art-nextgen-simulation-tools-profiles time coreutils

# The reference: smalt-examples' hs37chrXtrunc.fa.gz. Use it if the package is installed,
# else unpack the .deb into the cache (installing it would pull in smalt and more).
find_ref_gz() {
    if dpkg-query -W -f='${Status}' smalt-examples 2>/dev/null | grep -q 'install ok installed'; then
        dpkg -L smalt-examples | grep '/hs37chrXtrunc\.fa\.gz$' | head -n1
    elif [ -d "$DIR/smalt-examples" ]; then
        find "$DIR/smalt-examples" -name hs37chrXtrunc.fa.gz | head -n1
    fi
}
if [ ! -s ref.fa ]; then
    REF_GZ=$(find_ref_gz || true)
    if [ -z "$REF_GZ" ]; then
        begin "fetch smalt-examples"
        [ $apt_updated -eq 1 ] || { apt-get update -qq; apt_updated=1; }
        tmpdeb=$(mktemp -d "$DIR/deb.XXXXXX")
        (cd "$tmpdeb" && apt-get download -qq -o APT::Sandbox::User=root smalt-examples)
        rm -rf "$DIR/smalt-examples"
        dpkg -x "$tmpdeb"/smalt-examples_*.deb "$DIR/smalt-examples"
        rm -rf "$tmpdeb"
        REF_GZ=$(find_ref_gz)
        end "fetch smalt-examples"
    fi
    [ -n "$REF_GZ" ] && [ -s "$REF_GZ" ] || { echo "hs37chrXtrunc.fa.gz not found" >&2; exit 1; }
    begin "ref.fa from $REF_GZ"
    gzip -dc "$REF_GZ" > ref.fa.tmp
    mv ref.fa.tmp ref.fa
    rm -f ref.fa.fai
    end "ref.fa"
fi
[ -s ref.fa.fai ] || samtools faidx ref.fa

# ---------------------------------------------------------------- reads
# ART's own SAM output is broken: only its FASTQ is used (-na: no ALN, no -sam).
if [ ! -s sorted.bam ]; then
    if [ ! -s reads1.fq ] || [ ! -s reads2.fq ] || [ ! -e reads.done ]; then
        begin "art_illumina HS25 2x150 coverage $COV"
        rm -f reads1.fq reads2.fq reads.done
        art_illumina -ss HS25 -p -l 150 -f "$COV" -m 400 -s 50 -na -rs 42 \
            -i ref.fa -o reads > art.log 2>&1
        touch reads.done
        end "art_illumina ($(( $(wc -l < reads1.fq) / 4 * 2 )) reads)"
    fi
    begin "minimap2 -ax sr -t $T | samtools sort"
    minimap2 -ax sr -t "$T" ref.fa reads1.fq reads2.fq 2> minimap2.log \
        | samtools sort -@"$T" -m 1G -T "$DIR/sorttmp" -o sorted.bam.tmp -
    mv sorted.bam.tmp sorted.bam
    rm -f sorted.bam.bai
    end "sorted.bam"
fi
if [ ! -s sorted.bam.bai ]; then
    begin "samtools index"; samtools index -@"$T" sorted.bam; end "index"
fi
# the FASTQ is only needed to build sorted.bam
rm -f reads1.fq reads2.fq reads.done

if [ ! -s name.bam ]; then
    begin "samtools sort -n"
    samtools sort -n -@"$T" -m 1G -T "$DIR/nsorttmp" -o name.bam.tmp sorted.bam
    mv name.bam.tmp name.bam
    end "name.bam"
fi

if [ ! -s shuffled.bam ]; then
    begin "shuffle"
    # deterministic shuffle: shuf with a fixed random source
    { samtools view -H sorted.bam | sed '/^@HD/s/\tSO:[^\t]*/\tSO:unsorted/'
      samtools view -@"$T" sorted.bam | shuf --random-source=<(yes); } \
        | samtools view -@"$T" -b -o shuffled.bam.tmp -
    mv shuffled.bam.tmp shuffled.bam
    end "shuffled.bam"
fi

if [ ! -s stats.txt ]; then
    samtools idxstats sorted.bam > stats.txt.tmp && mv stats.txt.tmp stats.txt
fi
log "all inputs ready in $DIR ($((SECONDS - total_start)) s this run)"
ls -l "$DIR"/*.bam "$DIR"/*.bai "$DIR"/ref.fa* >&2
