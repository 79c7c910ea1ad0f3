# Errors are R conditions of class "bams3_error" carrying the library's message.

cases <- test_cases()
ds <- cases[[1L]]$bams3

test_that("a missing dataset is a bams3_error naming it", {
    missing <- file.path(tempdir(), "no-such-dataset.bams3")
    f <- Bams3File(missing)
    err <- tryCatch(scanBam(f), error = function(e) e)
    expect_s3_class(err, "bams3_error")
    expect_match(conditionMessage(err), "no-such-dataset.bams3", fixed = TRUE)
    expect_identical(err$status, "not found")
    expect_false(isOpen(f))
    expect_error(open(f), class = "bams3_error")
})

test_that("an incomplete dataset (no _metadata.json) is refused", {
    copy <- file.path(tempdir(), "incomplete.bams3")
    unlink(copy, recursive = TRUE)
    dir.create(copy)
    file.copy(list.files(path(ds), full.names = TRUE), copy, recursive = TRUE)
    unlink(file.path(copy, "_metadata.json"))
    err <- tryCatch(countBam(Bams3File(copy)), error = function(e) e)
    expect_s3_class(err, "bams3_error")
    expect_identical(err$status, "incomplete dataset")
    expect_match(conditionMessage(err), "incomplete", ignore.case = TRUE)
    unlink(copy, recursive = TRUE)
})

test_that("an unknown reference in which is an error, as with Rsamtools", {
    p <- ScanBamParam(which = GRanges("no_such_ref", IRanges(1, 100)))
    expect_error(scanBam(ds, param = p), "no_such_ref")
    expect_error(countBam(ds, param = p), "no_such_ref")
    expect_error(readGAlignments(ds, param = p), "no_such_ref")
    expect_error(scanBam(cases[[1L]]$bam, param = p), "no_such_ref")
})

test_that("open, close and isOpen; calls work on a closed file and leave it closed", {
    f <- Bams3File(path(ds))
    expect_false(isOpen(f))
    n <- countBam(f)$records
    expect_false(isOpen(f))
    open(f)
    expect_true(isOpen(f))
    expect_identical(countBam(f)$records, n)
    expect_true(isOpen(f))
    close(f)
    expect_false(isOpen(f))
    close(f)
    expect_identical(path(f), path(ds))
    expect_output(show(f), "Bams3File")
    expect_match(bams3Version(), "^[0-9]+\\.[0-9]+\\.[0-9]+")
})

test_that("bad parameters are errors, not silently ignored", {
    expect_error(scanBam(ds, param = "x"), "ScanBamParam")
    expect_error(Bams3File(path(ds), yieldSize = -1L), "yieldSize")
})

test_that("bams3Convert writes a dataset identical in content to the BAM", {
    out <- file.path(tempdir(), "converted.bams3")
    unlink(out, recursive = TRUE)
    f <- bams3Convert(path(cases[[1L]]$bam), out, chunkSize = "256K")
    p <- ScanBamParam(what = scanBamWhat())
    expect_identical(scanBam(f, param = p), scanBam(cases[[1L]]$bam, param = p))
    err <- tryCatch(bams3Convert(path(cases[[1L]]$bam), out), error = function(e) e)
    expect_s3_class(err, "bams3_error")
    expect_match(conditionMessage(err), "exist")
    unlink(out, recursive = TRUE)
})

test_that("an interrupted scan leaves no handle behind and the next scan works", {
    # An interrupt raised between batches (here: by R's own check) unwinds through .Call;
    # the query and batch handles are freed by their finalizers at the next gc().
    big <- cases[[which.max(vapply(cases, function(c) countBam(c$bam)$records, 0))]]
    script <- tempfile(fileext = ".R")
    writeLines(c(
        "suppressPackageStartupMessages(library(bams3))",
        sprintf("f <- Bams3File(%s)", deparse(path(big$bams3))),
        "open(f)",
        # The whole shell in the background: system(wait = FALSE) only backgrounds the last
        # command of a list, and SIGINT is ignored while system() waits for the shell.
        "system2('sh', c('-c', shQuote(sprintf('sleep 0.5; kill -INT %d', Sys.getpid()))), wait = FALSE)",
        "r <- tryCatch({ repeat scanBam(f); 'finished' },",
        "  interrupt = function(e) 'interrupted')",
        "invisible(gc())",
        "n <- countBam(f)$records",
        "cat(r, n, '\\n')"), script)
    out <- system2(file.path(R.home("bin"), "Rscript"), shQuote(script), stdout = TRUE, stderr = TRUE)
    expect_match(paste(out, collapse = "\n"), paste("interrupted", countBam(big$bam)$records))
})
