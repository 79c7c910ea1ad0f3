# A dataset on S3 (the loopback moto server test.sh starts) reads exactly like the local BAM.

test_that("an s3:// dataset gives the same results as the BAM", {
    uri <- Sys.getenv("BAMS3_R_S3_URI")
    bam <- Sys.getenv("BAMS3_R_S3_BAM")
    if (!nzchar(uri) || !nzchar(Sys.getenv("AWS_ENDPOINT_URL")))
        stop("BAMS3_R_S3_URI / AWS_ENDPOINT_URL are not set: run bindings/r/test.sh")
    f <- Bams3File(uri)
    b <- BamFile(bam)
    expect_identical(path(f), uri)
    expect_identical(seqinfo(f), seqinfo(b))
    p <- ScanBamParam(what = scanBamWhat())
    expect_identical(scanBam(f, param = p), scanBam(b, param = p))
    ranges <- random_ranges(b, 5L, seed = 99L)
    p <- ScanBamParam(which = ranges, what = scanBamWhat())
    expect_identical(scanBam(f, param = p), scanBam(b, param = p))
    expect_identical(counts(countBam(f, param = p)), counts(countBam(b, param = p)))
    expect_identical(readGAlignments(f, param = p), readGAlignments(b, param = p))
    expect_identical(bams3Stats(f)$statistics, bams3Stats(Sys.getenv("BAMS3_R_S3_LOCAL"))$statistics)
})

test_that("a missing S3 dataset is a bams3_error naming it", {
    uri <- Sys.getenv("BAMS3_R_S3_URI")
    missing <- sub("[^/]+$", "no-such.bams3", uri)
    err <- tryCatch(countBam(Bams3File(missing)), error = function(e) e)
    expect_s3_class(err, "bams3_error")
    expect_match(conditionMessage(err), "no-such.bams3", fixed = TRUE)
})
