# Test data prepared by bindings/r/test.sh: $BAMS3_R_TESTDATA/cases.tsv lists, per real BAM,
# its name, the sorted and indexed BAM, the dataset converted from it with `bams3 convert`,
# and the tags its records carry. Missing data is a failure, never a skip.
suppressPackageStartupMessages({
    library(Rsamtools)
    library(GenomicAlignments)
})

test_data_dir <- function() {
    dir <- Sys.getenv("BAMS3_R_TESTDATA")
    if (!nzchar(dir) || !file.exists(file.path(dir, "cases.tsv")))
        stop("BAMS3_R_TESTDATA does not name prepared test data: run bindings/r/test.sh")
    dir
}

test_cases <- function() {
    dir <- test_data_dir()
    cases <- read.delim(file.path(dir, "cases.tsv"), header = TRUE, stringsAsFactors = FALSE,
                        colClasses = "character")
    if (nrow(cases) == 0L)
        stop("no test cases in ", file.path(dir, "cases.tsv"))
    cases$tags[is.na(cases$tags)] <- ""
    lapply(seq_len(nrow(cases)), function(i) {
        tags <- strsplit(cases$tags[i], ",", fixed = TRUE)[[1L]]
        list(name = cases$name[i], bam = BamFile(cases$bam[i]),
             bams3 = Bams3File(cases$bams3[i]), tags = tags[nzchar(tags)])
    })
}

# Seeded random ranges over the references of `file` that hold records.
random_ranges <- function(bam, n, seed, max_width = 50000L) {
    set.seed(seed)
    si <- seqinfo(bam)
    counts <- idxstatsBam(bam)
    refs <- as.character(counts$seqnames[counts$mapped > 0])
    if (length(refs) == 0L)
        refs <- seqnames(si)
    space <- sample(refs, n, replace = TRUE)
    lens <- seqlengths(si)[space]
    widths <- pmin(lens, sample.int(max_width, n, replace = TRUE))
    starts <- vapply(seq_len(n), function(i) sample.int(max(1L, lens[[i]] - widths[[i]] + 1L), 1L), 1L)
    GRanges(space, IRanges(starts, width = widths), seqinfo = si)
}

# countBam() without its `file` column (the file's base name, which differs by design).
counts <- function(x) x[setdiff(names(x), "file")]
