# Parity with Rsamtools and GenomicAlignments: the same calls on the BAM (with its BAI) and on
# the dataset converted from it must give identical() results.

cases <- test_cases()

flag_filters <- list(
    all = scanBamFlag(),
    no_dup = scanBamFlag(isDuplicate = FALSE),
    minus = scanBamFlag(isMinusStrand = TRUE),
    proper = scanBamFlag(isPaired = TRUE, isProperPair = TRUE),
    primary = scanBamFlag(isSecondaryAlignment = FALSE, isSupplementaryAlignment = FALSE),
    suppl = scanBamFlag(isSupplementaryAlignment = TRUE),
    unmapped = scanBamFlag(isUnmappedQuery = TRUE),
    first_mate_unmapped = scanBamFlag(isFirstMateRead = TRUE, hasUnmappedMate = TRUE),
    qcfail = scanBamFlag(isNotPassingQualityControls = FALSE)
)

for (case in cases) {
    bam <- case$bam
    ds <- case$bams3

    test_that(paste(case$name, ": header, seqinfo and scanBamHeader"), {
        expect_identical(seqinfo(ds), seqinfo(bam))
        expect_identical(scanBamHeader(ds, what = "targets"), scanBamHeader(bam, what = "targets"))
        h_bam <- scanBamHeader(bam)
        h_ds <- scanBamHeader(ds)
        expect_identical(h_ds$targets, h_bam$targets)
        # A BAM whose text holds no @SQ lines (old files) gets them from the dataset's header.
        if (length(h_bam$text) > 0L)
            expect_identical(h_ds$text, h_bam$text)
        expect_match(bams3HeaderText(ds), "@SQ", fixed = TRUE)
    })

    test_that(paste(case$name, ": scanBam of the whole file, every field and tag"), {
        p <- ScanBamParam(what = scanBamWhat(), tag = case$tags)
        expect_identical(scanBam(ds, param = p), scanBam(bam, param = p))
        p <- ScanBamParam(what = c("pos", "cigar"), reverseComplement = TRUE, simpleCigar = TRUE)
        expect_identical(scanBam(ds, param = p), scanBam(bam, param = p))
        # Each costly field alone: the scan decodes only its stream (mates, names, qualities).
        for (what in list(c("mrnm", "mpos", "isize", "qwidth"), c("qname", "rname"), "qual")) {
            p <- ScanBamParam(what = what)
            expect_identical(scanBam(ds, param = p), scanBam(bam, param = p),
                             label = paste("scanBam what =", paste(what, collapse = ",")))
        }
    })

    test_that(paste(case$name, ": scanBam of seeded random regions, every field and tag"), {
        ranges <- random_ranges(bam, 12L, seed = 11L)
        for (i in seq_along(ranges)) {
            p <- ScanBamParam(which = ranges[i], what = scanBamWhat(), tag = case$tags)
            expect_identical(scanBam(ds, param = p), scanBam(bam, param = p),
                             label = paste("scanBam", as.character(ranges[i])))
        }
        # Several ranges in one which, some on other references.
        p <- ScanBamParam(which = ranges, what = c("qname", "flag", "pos", "seq", "qual"),
                          tag = head(case$tags, 3L), reverseComplement = TRUE)
        expect_identical(scanBam(ds, param = p), scanBam(bam, param = p))
    })

    test_that(paste(case$name, ": flag filters and mapqFilter"), {
        ranges <- random_ranges(bam, 3L, seed = 23L, max_width = 200000L)
        for (nm in names(flag_filters)) {
            for (mq in c(NA_integer_, 20L)) {
                p <- ScanBamParam(which = ranges, flag = flag_filters[[nm]], mapqFilter = mq,
                                  what = c("qname", "flag", "mapq", "rname", "pos", "strand"),
                                  tag = head(case$tags, 2L))
                expect_identical(scanBam(ds, param = p), scanBam(bam, param = p),
                                 label = paste("flags", nm, "mapq", mq))
                expect_identical(counts(countBam(ds, param = p)), counts(countBam(bam, param = p)),
                                 label = paste("countBam flags", nm, "mapq", mq))
            }
            p <- ScanBamParam(flag = flag_filters[[nm]], what = c("flag", "mapq"))
            expect_identical(scanBam(ds, param = p), scanBam(bam, param = p),
                             label = paste("whole file, flags", nm))
        }
    })

    test_that(paste(case$name, ": yieldSize iteration on an open file"), {
        n <- countBam(bam)$records
        ys <- max(100L, as.integer(ceiling(n / 4)))   # a handful of chunks, the last one short
        b <- BamFile(path(bam), yieldSize = ys)
        d <- Bams3File(path(ds), yieldSize = ys)
        expect_identical(yieldSize(d), ys)
        open(b); open(d)
        on.exit({ close(b); close(d) })
        p <- ScanBamParam(what = c("qname", "flag", "rname", "pos", "cigar", "seq", "qual"),
                          tag = head(case$tags, 2L), flag = scanBamFlag(isDuplicate = FALSE),
                          mapqFilter = 1L)
        for (k in 1:50) {
            x <- scanBam(b, param = p)
            expect_identical(scanBam(d, param = p), x, label = paste("chunk", k))
            if (length(x[[1L]]$pos) == 0L) break
        }
        close(b); close(d); open(b); open(d)
        for (k in 1:50) {
            x <- readGAlignments(b)
            expect_identical(readGAlignments(d), x, label = paste("readGAlignments chunk", k))
            if (length(x) == 0L) break
        }
    })

    test_that(paste(case$name, ": tagFilter"), {
        ranges <- random_ranges(bam, 4L, seed = 31L, max_width = 200000L)
        tested <- 0L
        for (tg in case$tags) {
            if (tested == 2L)
                break
            v <- tryCatch(scanBam(bam, param = ScanBamParam(tag = tg))[[1L]]$tag[[tg]],
                          error = function(e) NULL)
            if (!(is.integer(v) || is.character(v)) || all(is.na(v)))
                next
            vals <- head(names(sort(table(v), decreasing = TRUE)), 2L)
            if (is.integer(v))
                vals <- as.integer(vals)
            tf <- setNames(list(vals), tg)
            p <- ScanBamParam(what = c("qname", "flag", "pos", "cigar"), tag = head(case$tags, 3L),
                              tagFilter = tf)
            expect_identical(scanBam(ds, param = p), scanBam(bam, param = p), label = paste("tagFilter", tg))
            expect_identical(counts(countBam(ds, param = p)), counts(countBam(bam, param = p)))
            bamWhich(p) <- ranges
            expect_identical(scanBam(ds, param = p), scanBam(bam, param = p))
            expect_identical(counts(countBam(ds, param = p)), counts(countBam(bam, param = p)))
            # The wrong type of value is an error on both.
            bad <- setNames(list(if (is.integer(v)) "x" else 1L), tg)
            p <- ScanBamParam(what = "pos", tagFilter = bad)
            expect_error(scanBam(bam, param = p), "does not match tagFilter type")
            expect_error(scanBam(ds, param = p), "does not match tagFilter type")
            tested <- tested + 1L
        }
        # A tag no record carries keeps nothing.
        p <- ScanBamParam(what = "pos", tagFilter = list(ZZ = 1L))
        expect_identical(scanBam(ds, param = p), scanBam(bam, param = p))
    })

    test_that(paste(case$name, ": countBam"), {
        expect_identical(countBam(ds)$file, basename(path(ds)))
        expect_identical(counts(countBam(ds)), counts(countBam(bam)))
        ranges <- random_ranges(bam, 10L, seed = 5L)
        p <- ScanBamParam(which = ranges)
        expect_identical(counts(countBam(ds, param = p)), counts(countBam(bam, param = p)))
    })

    test_that(paste(case$name, ": readGAlignments"), {
        expect_identical(readGAlignments(ds), readGAlignments(bam))
        expect_identical(readGAlignments(ds, use.names = TRUE), readGAlignments(bam, use.names = TRUE))
        ranges <- random_ranges(bam, 6L, seed = 7L, max_width = 200000L)
        p <- ScanBamParam(which = ranges, what = c("flag", "mapq", "seq"), tag = head(case$tags, 3L),
                          flag = scanBamFlag(isDuplicate = FALSE), mapqFilter = 1L)
        expect_identical(readGAlignments(ds, param = p, use.names = TRUE, with.which_label = TRUE),
                         readGAlignments(bam, param = p, use.names = TRUE, with.which_label = TRUE))
    })

    test_that(paste(case$name, ": coverage and depth"), {
        ranges <- random_ranges(bam, 2L, seed = 3L, max_width = 100000L)
        p <- ScanBamParam(which = ranges)
        expect_identical(coverage(ds, param = p), coverage(bam, param = p))
        # bams3Depth against `bams3 depth -a` on the same range.
        r <- ranges[1L]
        d <- bams3Depth(ds, r)
        cli <- Sys.getenv("BAMS3_CLI")
        region <- sprintf("%s:%d-%d", as.character(seqnames(r)), start(r), end(r))
        out <- system2(cli, c("depth", "-a", shQuote(path(ds)), shQuote(region)), stdout = TRUE)
        want <- read.delim(text = paste(out, collapse = "\n"), header = FALSE,
                           col.names = c("seqname", "pos", "depth"), colClasses = c("character", "integer", "integer"))
        expect_identical(d$pos, want$pos)
        expect_identical(d$depth, want$depth)
    })

    test_that(paste(case$name, ": bams3Stats"), {
        s <- bams3Stats(ds)
        expect_type(s, "list")
        expect_equal(s$statistics$total_reads, countBam(bam)$records)
        expect_equal(s$statistics$total_bases, countBam(bam)$nucleotides)
    })
}
