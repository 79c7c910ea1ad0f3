#!/usr/bin/env bash
# The R package against Rsamtools, in one R session, on the benchmark input: scanBam of 1 Mbp
# and of a whole chromosome (every field), readGAlignments of the whole chromosome, each on the
# BAMS3 dataset (Bams3File) and on the BAM + BAI (BamFile). Prints a markdown table of medians,
# ratios and peak RSS, and checks that both give identical() results.
#
#   bench/r.sh                        # from the repository root, after cargo build --release
#
# Env knobs:
#   BENCH_RUNS=3          repetitions (median reported)
#   BAMS3=target/release/bams3        the CLI used to convert the input
#   BAMS3_BENCH_DIR=~/.cache/bams3/bench   input cache (built by bench/build-input.sh)
#   BENCH_CHROM=X         the contig of the queries
#   BENCH_TMP=/tmp        scratch directory (dataset, R library); removed at exit
#   BENCH_OUT=FILE        also write the table to FILE
#
# Peak RSS of each call: the process's VmHWM after the call, reset before it by writing 5 to
# /proc/self/clear_refs, so each figure is the peak during that call alone (R's own baseline,
# ~150 MB with Bioconductor loaded, included). Wall time: elapsed time of the call; the page
# cache is warm (each measurement runs once untimed first).
# Exit status 1 when a result differs from Rsamtools' (or either side returns no records).
set -euo pipefail

RUNS=${BENCH_RUNS:-3}
BAMS3=${BAMS3:-target/release/bams3}
DIR=${BAMS3_BENCH_DIR:-$HOME/.cache/bams3/bench}
CHR=${BENCH_CHROM:-X}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

"$HERE/build-input.sh"
[ -x "$BAMS3" ] || { echo "BAMS3 binary $BAMS3 not found: cargo build --release" >&2; exit 2; }
BAMS3=$(cd "$(dirname "$BAMS3")" && pwd)/$(basename "$BAMS3")
command -v Rscript >/dev/null || { echo "R is missing: bindings/r/test.sh installs it" >&2; exit 2; }

TMP=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/bams3-rbench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$TMP/lib"

echo "[r-bench] installing the R package against $(dirname "$BAMS3")" >&2
R CMD INSTALL --clean -l "$TMP/lib" "$ROOT/bindings/r" >"$TMP/install.log" 2>&1 ||
    { cat "$TMP/install.log" >&2; exit 2; }
rm -f "$ROOT/bindings/r/src/Makevars" "$ROOT/bindings/r/R/configured.R"
echo "[r-bench] converting $DIR/sorted.bam" >&2
"$BAMS3" convert --quiet "$DIR/sorted.bam" "$TMP/sorted.bams3"

status=0
R_LIBS="$TMP/lib" RUNS="$RUNS" CHR="$CHR" BAM="$DIR/sorted.bam" DS="$TMP/sorted.bams3" \
    Rscript - >"$TMP/table.md" <<'EOF' || status=$?
suppressPackageStartupMessages({ library(bams3); library(Rsamtools); library(GenomicAlignments) })
runs <- as.integer(Sys.getenv("RUNS")); chr <- Sys.getenv("CHR")
## Neither file is held open: Rsamtools 2.14 returns no records from the second `which` query
## on an open BamFile (each call here opens and closes the file, as Bams3File's does).
bam <- BamFile(Sys.getenv("BAM")); ds <- Bams3File(Sys.getenv("DS"))
len <- seqlengths(bam)[[chr]]
mid <- len %/% 2L
cases <- list(
    list("scanBam 1 Mbp, every field", function(f) scanBam(f, param = ScanBamParam(
        which = GRanges(chr, IRanges(mid, mid + 999999L)), what = scanBamWhat()))),
    list(sprintf("scanBam whole %s, every field", chr), function(f) scanBam(f, param = ScanBamParam(
        which = GRanges(chr, IRanges(1L, len)), what = scanBamWhat()))),
    list(sprintf("readGAlignments whole %s", chr), function(f) readGAlignments(f, param = ScanBamParam(
        which = GRanges(chr, IRanges(1L, len))))))
peak <- function() {
    s <- readLines("/proc/self/status")
    as.numeric(sub("[^0-9]*([0-9]+).*", "\\1", s[grepl("^VmHWM", s)])) / 1024
}
measure <- function(fun, f) {
    invisible(gc())
    writeLines("5", "/proc/self/clear_refs")
    t <- system.time(x <- fun(f))[["elapsed"]]
    list(t = t, rss = peak(), x = x)
}
cat("| measurement | records | Rsamtools (BAM+BAI) | bams3 (Bams3File) | ratio | peak RSS Rsamtools / bams3 |\n")
cat("|---|---:|---:|---:|---:|---:|\n")
bad <- 0L
count <- function(x) if (is(x, "GAlignments")) length(x) else length(x[[1]][[1]])
for (case in cases) {
    name <- case[[1]]; fun <- case[[2]]
    # An untimed first run of each side checks the results (and warms the page cache); the
    # timed runs then hold no other result, so each peak RSS is that call's alone.
    a <- fun(bam); b <- fun(ds)
    n <- count(a)
    if (n == 0L || count(b) != n) {
        bad <- bad + 1L
        message(sprintf("RECORD COUNTS: %s: Rsamtools %d, bams3 %d", name, n, count(b)))
    } else if (!identical(a, b)) {
        bad <- bad + 1L
        message("DIFFERENT: ", name)
    }
    rm(a, b)
    tb <- td <- rb <- rd <- numeric(0)
    for (i in seq_len(runs)) {
        a <- measure(fun, bam)
        tb <- c(tb, a$t); rb <- c(rb, a$rss)
        rm(a)
        b <- measure(fun, ds)
        td <- c(td, b$t); rd <- c(rd, b$rss)
        rm(b)
    }
    cat(sprintf("| %s | %d | %.2f s | %.2f s | %.2f | %.0f / %.0f MB |\n", name, n, median(tb),
                median(td), median(td) / median(tb), max(rb), max(rd)))
}
cat(sprintf("\nR %s, Rsamtools %s, GenomicAlignments %s, bams3 %s; %d runs, medians; identical() results: %s.\n",
            getRversion(), packageVersion("Rsamtools"), packageVersion("GenomicAlignments"),
            bams3Version(), runs, if (bad == 0L) "all" else sprintf("%d DIFFERENT", bad)))
quit(status = if (bad == 0L) 0L else 1L)
EOF
cat "$TMP/table.md"
[ -z "${BENCH_OUT:-}" ] || cp "$TMP/table.md" "$BENCH_OUT"
exit $status
