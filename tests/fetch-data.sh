#!/usr/bin/env bash
# Fetch the oracle tools and the real BAM files the integration tests use.
#
# Idempotent: tools are installed only when missing, packages are downloaded only
# when their BAMs are not already in the cache. Result: a flat directory
#   ${BAMS3_TEST_DATA:-$HOME/.cache/bams3/test-data}
# holding named BAMs and a MANIFEST (one file name per line).
#
# Big packages (R, Java, ...) are never installed: `apt-get download` + `dpkg -x`
# unpacks only their files, without their dependencies.
set -euo pipefail

DATA="${BAMS3_TEST_DATA:-${HOME:-/root}/.cache/bams3/test-data}"
start=$(date +%s)

log() { printf 'fetch-data: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_update_once() {
    if [ "$apt_updated" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
}

# --- oracle tools and SAM/BAM fidelity suites ------------------------------------
missing=()
command -v samtools >/dev/null 2>&1 || missing+=(samtools)
command -v tabix >/dev/null 2>&1 || missing+=(tabix)
[ -d /usr/share/htslib-test/test ] || missing+=(htslib-test)
[ -d /usr/share/samtools/test ] || missing+=(samtools-test)
# The C/C++ binding tests (bindings/test.sh): compilers, make, valgrind, htslib headers.
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
[ -f /usr/include/htslib/sam.h ] || missing+=(libhts-dev)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_update_once
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- real BAM files ----------------------------------------------------------------
# name in the cache | Debian package | path inside the package (gzipped when .gz)
SOURCES=(
    "human_mouse_smaller.bam|drop-seq-testdata|usr/share/doc/drop-seq-testdata/utils/human_mouse_smaller.bam.gz"
    "na12878-chrM-Y-trunc.bam|cnvkit|*/examples/test/formats/na12878-chrM-Y-trunc.bam"
    "ex1.bam|r-bioc-rsamtools|*/Rsamtools/extdata/ex1.bam"
    "ex1_unsort.bam|r-bioc-rsamtools|*/Rsamtools/unitTests/cases/ex1_unsort.bam"
    "NA12878.chr22.tiny.bam|freebayes|*/examples/tiny/NA12878.chr22.tiny.bam"
    "gviz_indels.bam|r-bioc-gviz|*/Gviz/extdata/indels.bam"
    "bowtie2_combined_reads.bam|bowtie2-examples|*/bowtie2/examples/reads/combined_reads.bam*"
)

mkdir -p "$DATA"
work="$DATA/.work"

# Packages whose BAMs are not all in the cache yet.
need_pkgs=()
for src in "${SOURCES[@]}"; do
    IFS='|' read -r name pkg _ <<<"$src"
    if [ ! -s "$DATA/$name" ]; then
        case " ${need_pkgs[*]-} " in
            *" $pkg "*) ;;
            *) need_pkgs+=("$pkg") ;;
        esac
    fi
done

if [ "${#need_pkgs[@]}" -gt 0 ]; then
    rm -rf "$work"
    mkdir -p "$work/debs"
    log "downloading ${need_pkgs[*]}"
    if ! (cd "$work/debs" && apt-get download -qq "${need_pkgs[@]}" >/dev/null 2>&1); then
        apt_update_once
        (cd "$work/debs" && apt-get download -qq "${need_pkgs[@]}" >/dev/null)
    fi
    for pkg in "${need_pkgs[@]}"; do
        deb=$(ls "$work/debs/${pkg}"_*.deb)
        mkdir -p "$work/x/$pkg"
        dpkg -x "$deb" "$work/x/$pkg"
        rm -f "$deb"
    done
    for src in "${SOURCES[@]}"; do
        IFS='|' read -r name pkg pattern <<<"$src"
        [ -s "$DATA/$name" ] && continue
        [ -d "$work/x/$pkg" ] || continue
        found=$(cd "$work/x/$pkg" && find . -path "./${pattern#\*/}" -o -path "./$pattern" | head -n 1)
        if [ -z "$found" ]; then
            # Fall back to the base name anywhere in the package.
            base=$(basename "$pattern")
            found=$(cd "$work/x/$pkg" && find . -name "$base" | head -n 1)
        fi
        if [ -z "$found" ]; then
            log "ERROR: $pattern not found in package $pkg"
            exit 1
        fi
        case "$found" in
            *.gz) gzip -dc "$work/x/$pkg/$found" >"$DATA/$name.tmp" ;;
            *) cp "$work/x/$pkg/$found" "$DATA/$name.tmp" ;;
        esac
        mv "$DATA/$name.tmp" "$DATA/$name"
        log "got $name ($(wc -c <"$DATA/$name") bytes)"
    done
    rm -rf "$work"
fi

# --- MANIFEST ----------------------------------------------------------------------
: >"$DATA/MANIFEST.tmp"
for src in "${SOURCES[@]}"; do
    IFS='|' read -r name _ _ <<<"$src"
    if [ ! -s "$DATA/$name" ]; then
        log "ERROR: $DATA/$name is missing"
        exit 1
    fi
    echo "$name" >>"$DATA/MANIFEST.tmp"
done
mv "$DATA/MANIFEST.tmp" "$DATA/MANIFEST"

# --- moto: the S3-compatible server the S3 tests start on loopback -----------------
# In its own venv under the cache (not in $DATA, which holds only BAMs).
MOTO_VENV="${HOME:-/root}/.cache/bams3/moto-venv"
if [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        log "installing python3-venv"
        apt_update_once
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    fi
    log "installing moto[server] into $MOTO_VENV"
    rm -rf "$MOTO_VENV"
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install -q 'moto[server]==5.*'
fi

# --- s3s-fs: a second S3-compatible server, which checks request signatures ---------
# Built from crates.io (0.14.1: later versions need a newer rustc than Debian's machines have).
S3S_ROOT="${HOME:-/root}/.cache/bams3/s3s-fs"
if [ ! -x "$S3S_ROOT/bin/s3s-fs" ]; then
    log "installing s3s-fs 0.14.1 into $S3S_ROOT (cargo install, a few minutes)"
    cargo install -q s3s-fs --version 0.14.1 --features binary --locked --root "$S3S_ROOT"
fi

log "test data ready in $DATA ($(($(date +%s) - start)) s)"
