#!/usr/bin/env bash
# Tests of the R package `bams3` (called by tests/run.sh after the Rust and C/C++ suites):
#  1. installs R, testthat, Rsamtools and GenomicAlignments from Debian packages when missing;
#  2. installs the package from this directory against the workspace build
#     (target/release/libbams3.so, include/bams3.h; no Rust is built here);
#  3. converts the real test BAMs with target/release/bams3, indexes them with samtools, starts
#     a loopback moto S3 server with one dataset on it, and runs the testthat suite (parity
#     with Rsamtools/GenomicAlignments by identical(), S3, errors, interruption);
#  4. configure fails with its one-line message when it finds no library;
#  5. R CMD build, then R CMD check --no-manual on the tarball (configured through pkg-config):
#     any ERROR or WARNING in 00check.log fails.
# Prints `N passed, N failed` last.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}/release"
data="${BAMS3_TEST_DATA:-$HOME/.cache/bams3/test-data}"
moto="${BAMS3_MOTO_SERVER:-$HOME/.cache/bams3/moto-venv/bin/moto_server}"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
die() {
    fail "$*"
    finish || true
    exit 1
}

# 1. R and the Bioconductor packages (Debian 12: R 4.2, Bioconductor 3.16).
need_r() {
    command -v Rscript >/dev/null 2>&1 && command -v pkg-config >/dev/null 2>&1 &&
        Rscript -e 'for (p in c("testthat", "Rsamtools", "GenomicAlignments", "jsonlite"))
                        if (!requireNamespace(p, quietly = TRUE)) quit(status = 1)' >/dev/null 2>&1
}
if ! need_r; then
    echo "== installing R packages (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends r-base-dev r-cran-testthat r-bioc-rsamtools \
        r-bioc-genomicalignments r-cran-jsonlite pkg-config >/dev/null
    need_r || die "R, testthat, Rsamtools, GenomicAlignments or jsonlite still missing after apt-get"
fi
command -v samtools >/dev/null || die "samtools is missing: run tests/fetch-data.sh"
[ -x "$target/bams3" ] && [ -f "$target/libbams3.so" ] && [ -f "$root/include/bams3.h" ] ||
    die "no workspace build in $target: run cargo build --release first"
[ -f "$data/MANIFEST" ] || die "no test data in $data: run tests/fetch-data.sh"
[ -x "$moto" ] || die "moto is missing ($moto): run tests/fetch-data.sh"

tmp="$(mktemp -d)"
moto_pid=""
cleanup() {
    if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
export R_LIBS_USER="$tmp/lib" R_LIBS="$tmp/lib"
mkdir -p "$tmp/lib" "$tmp/data"

# 2. Install from the source directory: configure finds the repository's build.
echo "== R CMD INSTALL (repository build)"
if (cd "$tmp" && R CMD INSTALL --clean -l "$tmp/lib" "$here") >"$tmp/install.log" 2>&1 &&
    Rscript -e 'library(bams3); cat(bams3Version(), "\n")' >>"$tmp/install.log" 2>&1; then
    ok "R CMD INSTALL against the repository build"
else
    cat "$tmp/install.log" >&2
    die "R CMD INSTALL"
fi
rm -f "$here/src/Makevars" "$here/R/configured.R"

# 3. Data: every real BAM that samtools can index (coordinate-sorted), converted.
echo "== preparing data"
printf 'name\tbam\tbams3\ttags\n' >"$tmp/data/cases.tsv"
while read -r name; do
    [ -n "$name" ] || continue
    src="$data/$name"
    [ -f "$src" ] || die "$src is listed in MANIFEST but missing"
    base="${name%.bam}"
    cp "$src" "$tmp/data/$base.bam"
    # Region tests need references: a BAM without @SQ lines (all reads unplaced) is left out.
    if ! samtools view -H "$src" | grep -q '^@SQ' || ! samtools index "$tmp/data/$base.bam" 2>/dev/null; then
        rm -f "$tmp/data/$base.bam"
        continue # not coordinate-sorted: Rsamtools can only read it whole, in file order
    fi
    "$target/bams3" convert --quiet "$tmp/data/$base.bam" "$tmp/data/$base.bams3" ||
        die "bams3 convert $name"
    tags="$(set +o pipefail; samtools view "$tmp/data/$base.bam" | head -n 20000 |
        awk -F'\t' '{for (i = 12; i <= NF; i++) print substr($i, 1, 2)}' | sort -u | paste -sd, -)"
    printf '%s\t%s\t%s\t%s\n' "$base" "$tmp/data/$base.bam" "$tmp/data/$base.bams3" "$tags" \
        >>"$tmp/data/cases.tsv"
done < <(grep -v '^#' "$data/MANIFEST" | grep '\.bam$')
[ "$(wc -l <"$tmp/data/cases.tsv")" -gt 1 ] || die "no sorted BAM in $data"
echo "$(($(wc -l <"$tmp/data/cases.tsv") - 1)) BAM files"

# A loopback moto server with one dataset on it.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$moto" -H 127.0.0.1 -p "$port" >"$tmp/moto.log" 2>&1 &
moto_pid=$!
# Waits for moto (up to 60 s), then creates the bucket.
python3 - "$port" <<'PY' || die "moto did not start on port $port"
import sys, time, urllib.request
url = "http://127.0.0.1:%s/" % sys.argv[1]
for _ in range(600):
    try:
        urllib.request.urlopen(url, timeout=2)
        break
    except Exception:
        time.sleep(0.1)
urllib.request.urlopen(urllib.request.Request(url + "rtest", method="PUT"), timeout=10)
PY
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_CONFIG_FILE="$tmp/no-aws-config" AWS_SHARED_CREDENTIALS_FILE="$tmp/no-aws-credentials"
export XDG_CACHE_HOME="$tmp/cache"
unset AWS_PROFILE
s3_case="$(sed -n 2p "$tmp/data/cases.tsv")"
s3_bam="$(cut -f2 <<<"$s3_case")"
"$target/bams3" convert --quiet "$s3_bam" "s3://rtest/sample.bams3" || die "bams3 convert to S3"
export BAMS3_R_S3_URI="s3://rtest/sample.bams3" BAMS3_R_S3_BAM="$s3_bam"
export BAMS3_R_S3_LOCAL="$(cut -f3 <<<"$s3_case")"
export BAMS3_R_TESTDATA="$tmp/data" BAMS3_CLI="$target/bams3"

echo "== testthat"
# Each test_that() block is one test; a skip counts as a failure.
if Rscript - >"$tmp/testthat.log" 2>&1 <<EOF; then
suppressPackageStartupMessages({ library(testthat); library(bams3) })
res <- as.data.frame(test_dir("$here/tests/testthat", reporter = ProgressReporter\$new(show_praise = FALSE),
                              stop_on_failure = FALSE, package = "bams3", load_package = "installed"))
bad <- res\$failed > 0 | res\$error | res\$skipped
for (i in which(bad)) cat("FAILED TEST:", res\$file[i], "::", res\$test[i], "\n")
cat("TESTTHAT", sum(!bad), sum(bad), "\n")
EOF
    :
fi
cat "$tmp/testthat.log"
counts="$(grep '^TESTTHAT ' "$tmp/testthat.log" | tail -1 || true)"
if [ -z "$counts" ]; then
    fail "testthat did not run to the end"
else
    read -r _ p f <<<"$counts"
    passed=$((passed + p))
    failed=$((failed + f))
fi

# 4. Without a library, configure stops with one line saying what to set.
cp -r "$here" "$tmp/copy"
if (cd "$tmp/copy" && env -u BAMS3_INCLUDE_DIR -u BAMS3_LIB_DIR PKG_CONFIG_PATH=/nonexistent \
    PKG_CONFIG_LIBDIR=/nonexistent sh ./configure) >"$tmp/configure.log" 2>&1; then
    fail "configure succeeded without a library"
elif [ "$(grep -c . "$tmp/configure.log")" -eq 1 ] && grep -q "BAMS3_LIB_DIR" "$tmp/configure.log"; then
    ok "configure without a library: $(cat "$tmp/configure.log")"
else
    cat "$tmp/configure.log" >&2
    fail "configure without a library did not print one line naming BAMS3_LIB_DIR"
fi

# 5. R CMD build + check on the tarball, which finds the library through pkg-config.
echo "== R CMD build / check"
mkdir -p "$tmp/pc/lib/pkgconfig" "$tmp/check"
ln -s "$target/libbams3.so" "$tmp/pc/lib/libbams3.so"
ln -s "$target/libbams3.so" "$tmp/pc/lib/libbams3.so.0"
version="$(sed -n 's/^#define BAMS3_VERSION_STRING "\(.*\)"/\1/p' "$root/include/bams3.h")"
sed -e "s|@PREFIX@|$tmp/pc|" -e "s|@LIBDIR@|$tmp/pc/lib|" -e "s|@INCLUDEDIR@|$root/include|" \
    -e "s|@VERSION@|$version|" "$root/bindings/bams3.pc.in" >"$tmp/pc/lib/pkgconfig/bams3.pc"
export PKG_CONFIG_PATH="$tmp/pc/lib/pkgconfig"
if (cd "$tmp/check" && R CMD build --no-build-vignettes --no-manual "$here") >"$tmp/build.log" 2>&1; then
    ok "R CMD build"
else
    cat "$tmp/build.log" >&2
    fail "R CMD build"
fi
tarball="$(ls "$tmp/check"/bams3_*.tar.gz 2>/dev/null | head -1 || true)"
if [ -n "$tarball" ]; then
    # The tests need the data prepared above and ran just before against the installed
    # package; check runs everything else.
    (cd "$tmp/check" && _R_CHECK_FORCE_SUGGESTS_=false _R_CHECK_SYSTEM_CLOCK_=FALSE \
        R CMD check --no-manual --no-tests "$tarball") >"$tmp/check.log" 2>&1 || true
    log="$tmp/check/bams3.Rcheck/00check.log"
    if [ ! -f "$log" ]; then
        cat "$tmp/check.log" >&2
        fail "R CMD check did not run"
    elif grep -q "^Status:.*\(ERROR\|WARNING\)" "$log" || ! grep -q "^Status:" "$log"; then
        cat "$log" >&2
        fail "R CMD check: ERROR or WARNING"
    else
        ok "R CMD check: $(grep '^Status:' "$log")"
        grep -B1 -A6 "\.\.\. NOTE" "$log" || true
    fi
fi

finish
