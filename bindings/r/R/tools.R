## Conversion, statistics and depth: the dataset-level operations of the `bams3` command.

bams3Version <- function() .Call(C_version)

## The `bams3` command: option bams3.cli, then BAMS3_CLI, then the PATH, then the
## repository build this package was configured against.
.cli <- function() {
    cands <- c(getOption("bams3.cli", ""), Sys.getenv("BAMS3_CLI"), Sys.which("bams3"),
               .bams3_configured_cli)
    cands <- cands[nzchar(cands) & file.exists(cands)]
    if (length(cands) == 0L)
        stop("the 'bams3' command was not found: set options(bams3.cli = ) or BAMS3_CLI, ",
             "or put it on the PATH")
    cands[[1L]]
}

## Converts a BAM or SAM file (a path or s3:// URI) into a new BAMS3 dataset with `bams3
## convert`, and returns a Bams3File for it.
bams3Convert <- function(bam, destination, chunkSize = NULL, level = NULL, threads = NULL,
                         memory = NULL, overwrite = FALSE) {
    if (is(bam, "BamFile"))
        bam <- path(bam)
    stopifnot(is.character(bam), length(bam) == 1L,
              is.character(destination), length(destination) == 1L)
    if (isTRUE(overwrite) && !grepl("^s3://", destination) && file.exists(destination))
        unlink(destination, recursive = TRUE)
    args <- c("convert", "--quiet")
    if (!is.null(chunkSize)) args <- c(args, "--chunk-size", as.character(chunkSize))
    if (!is.null(level)) args <- c(args, "--level", as.character(level))
    if (!is.null(threads)) args <- c(args, "--threads", as.character(threads))
    if (!is.null(memory)) args <- c(args, "--memory", as.character(memory))
    args <- c(args, bam, destination)
    err <- tempfile()
    on.exit(unlink(err))
    status <- system2(.cli(), shQuote(args), stdout = FALSE, stderr = err)
    if (!identical(status, 0L)) {
        msg <- paste(readLines(err, warn = FALSE), collapse = "\n")
        stop(structure(class = c("bams3_error", "error", "condition"),
                       list(message = if (nzchar(msg)) msg else "bams3 convert failed",
                            call = NULL, code = NA_integer_, status = NA_character_)))
    }
    Bams3File(destination)
}

## Statistics of a dataset from its metadata and index (no chunk is read), as the list
## `bams3 stats --json` prints.
bams3Stats <- function(file) {
    if (is.character(file))
        file <- Bams3File(file)
    .with_open(file)
    fromJSON(.native(C_stats_json, .extptr(file)), simplifyVector = FALSE)
}

## Per-base depth over one range, with `samtools depth -a` semantics (records with any of
## `excludeFlags` left out, MAPQ at least `minMapq`, deletions and skips not counted):
## a data.frame of seqname, pos and depth for every position of the range on the reference.
bams3Depth <- function(file, region, minMapq = 0L, excludeFlags = 0x704L) {
    if (is.character(file))
        file <- Bams3File(file)
    .with_open(file)
    if (is.character(region))
        region <- as(region, "GRanges")
    stopifnot(is(region, "GRanges"), length(region) == 1L)
    seqname <- as.character(seqnames(region))
    len <- seqlengths(seqinfo(file))[[seqname]]
    from <- max(1L, start(region))
    to <- min(len, end(region))
    keep1 <- bitwAnd(4095L, bitwNot(as.integer(excludeFlags)))
    param <- ScanBamParam(which = GRanges(seqname, IRanges(from, to)),
                          flag = c(keep0 = 4095L, keep1 = keep1),
                          mapqFilter = as.integer(minMapq))
    aln <- readGAlignments(file, param = param)
    cov <- coverage(aln, drop.D.ranges = TRUE)[[seqname]]
    depth <- as.integer(cov[from:to])
    data.frame(seqname = rep.int(seqname, length(depth)), pos = from:to, depth = depth)
}
