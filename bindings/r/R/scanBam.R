## scanBam(), countBam(), readGAlignments() and coverage() for Bams3File, returning what
## Rsamtools and GenomicAlignments return for the same records of a BAM file.

.WHAT <- c("qname", "flag", "rname", "strand", "pos", "qwidth", "mapq", "cigar",
           "mrnm", "mpos", "isize", "seq", "qual")
.STRAND_LEVELS <- c("+", "-", "*")

## Byte -> DNAString code, for the C glue (Biostrings' own encoding, read through its API).
.dna_lookup <- local({
    lkup <- NULL
    function() {
        if (is.null(lkup)) {
            codes <- as.integer(DNAString(paste(DNA_ALPHABET, collapse = "")))
            l <- rep.int(0L, 256L)
            l[utf8ToInt(paste(DNA_ALPHABET, collapse = "")) + 1L] <- codes
            lkup <<- l
        }
        lkup
    }
})

## c(min_mapq, require_flags, exclude_flags) for the library from Rsamtools' keep0/keep1:
## a record is kept iff ~((keep0 & ~flag) | (keep1 & flag)) & 4095 == 0.
.filter <- function(param) {
    flag <- bamFlag(param, asInteger = TRUE)
    keep0 <- flag[[1L]]
    keep1 <- flag[[2L]]
    mask <- 4095L
    require <- bitwAnd(bitwAnd(bitwNot(keep0), keep1), mask)
    exclude <- bitwAnd(bitwAnd(keep0, bitwNot(keep1)), mask)
    none <- bitwAnd(bitwNot(bitwOr(keep0, keep1)), mask)   # bits no record can satisfy
    mapq <- bamMapqFilter(param)
    if (length(mapq) == 0L || is.na(mapq)) mapq <- 0L
    c(as.integer(mapq), bitwOr(require, none), bitwOr(exclude, none))
}

## The regions of param's `which`: list(space, start, end), or NULL for the whole dataset.
.regions <- function(file, param) {
    which <- bamWhich(param)
    levels <- seqlevels(file)
    if (!all(names(which) %in% levels)) {
        bad <- setdiff(names(which), levels)
        stop("seqlevels(param) not in BAMS3 header:", "\n    seqlevels: ",
             paste(sQuote(bad), collapse = ", "), "\n    file: ", path(file))
    }
    if (sum(lengths(which)) == 0L)
        return(NULL)
    list(space = factor(rep(names(which), lengths(which)), levels = names(which)),
         start = unlist(start(which), use.names = FALSE),
         end = unlist(end(which), use.names = FALSE),
         width = unlist(width(which), use.names = FALSE))
}

## The library's region string for one range: braces keep names with ':' unambiguous.
.region_string <- function(space, start, end)
    sprintf("{%s}:%d-%d", space, max(1L, start), max(end, 0L))

.check_param <- function(param) {
    if (!is(param, "ScanBamParam"))
        stop(sprintf("'%s' must be a '%s'; was '%s'", "param", "ScanBamParam", class(param)))
}

## One result list of scanBam: the records of `region` (NULL: the whole dataset), or, when
## `yield` is not NA, the next `yield` records of the running query `q`.
.scan1 <- function(file, region, param, levels, yield = NA_real_, q = NULL) {
    what <- .WHAT %in% bamWhat(param)
    tags <- as.character(bamTag(param))
    opts <- c(isTRUE(bamReverseComplement(param)), isTRUE(bamSimpleCigar(param)))
    if (is.null(q)) {
        # Only what `what` needs is decoded (names, bases, qualities, mates skipped otherwise).
        q <- .native(C_query, .extptr(file), region, .filter(param), what)
        on.exit(.Call(C_query_free, q))
    }
    x <- .native(C_scan, q, what, tags, opts, .dna_lookup(), as.numeric(yield),
                 bamTagFilter(param))
    names(x) <- c(.WHAT, "tag")
    for (f in c("rname", "mrnm"))
        if (!is.null(x[[f]]))
            x[[f]] <- structure(x[[f]], levels = levels, class = "factor")
    if (!is.null(x$strand))
        x$strand <- structure(x$strand, levels = .STRAND_LEVELS, class = "factor")
    if (!is.null(x$qual))
        x$qual <- PhredQuality(x$qual)
    Filter(Negate(is.null), x)
}

setMethod("scanBam", "Bams3File",
          function(file, index = file, ..., param = ScanBamParam(what = scanBamWhat())) {
    .check_param(param)
    if (!missing(index))
        warning("'index' ignored for scanBam,Bams3File-method")
    if (length(bamWhat(param)) == 0L && length(bamTag(param)) == 0L)
        warning("no BAM fields selected for input (neither 'bamWhat(param)' nor 'bamTag(param)' defined)")
    .with_open(file)
    levels <- seqlevels(file)
    regions <- .regions(file, param)
    if (is.null(regions) && !is.na(yieldSize(file))) {
        # As BamFile: the next yieldSize records of an open file (the first ones otherwise).
        q <- file@.handle$q
        if (is.null(q)) {
            # Kept across calls, whose `what` may differ: every field decoded.
            q <- .native(C_query, .extptr(file), NULL, .filter(param), NULL)
            file@.handle$q <- q
        }
        return(list(.scan1(file, NULL, param, levels, yield = yieldSize(file), q = q)))
    }
    if (is.null(regions))
        return(list(.scan1(file, NULL, param, levels)))
    ans <- vector("list", length(regions$space))
    for (i in seq_along(ans))
        ans[[i]] <- .scan1(file, .region_string(as.character(regions$space[i]), regions$start[i], regions$end[i]),
                           param, levels)
    names(ans) <- paste0(as.character(regions$space), ":", regions$start, "-", regions$end)
    ans
})

setMethod("countBam", "Bams3File", function(file, index = file, ..., param = ScanBamParam()) {
    .check_param(param)
    if (!missing(index))
        warning("'index' ignored for countBam,Bams3File-method")
    .with_open(file)
    seqlevels(file)
    regions <- .regions(file, param)
    filter <- .filter(param)
    simple <- isTRUE(bamSimpleCigar(param))
    tagFilter <- bamTagFilter(param)
    count <- function(region) .native(C_count, .extptr(file), region, filter, simple, 65536L,
                                      tagFilter)
    bfile <- basename(path(file))
    if (is.null(regions)) {
        x <- count(NULL)
        return(data.frame(space = NA, start = NA, end = NA, width = NA, file = bfile,
                          records = as.integer(x[1L]), nucleotides = x[2L]))
    }
    x <- vapply(seq_along(regions$space), function(i)
        count(.region_string(as.character(regions$space[i]), regions$start[i], regions$end[i])), numeric(2))
    data.frame(space = regions$space, start = regions$start, end = regions$end,
               width = regions$width, file = bfile,
               records = as.integer(x[1L, ]), nucleotides = x[2L, ])
})

## S4Vectors' quick_unlist: factors keep their levels, other vectors are c()-ed. One factor or
## plain vector (one range, or no which) is returned as it is: the same value, without the
## copy (unlist() of a 4 M-element factor takes seconds).
.quick_unlist <- function(x) {
    x1 <- x[[1L]]
    if (length(x) == 1L && (is.factor(x1) || (is.atomic(x1) && is.null(attributes(x1)))))
        return(x1)
    if (is.factor(x1)) structure(unlist(x), levels = levels(x1), class = "factor")
    else do.call(c, x)
}

## Rsamtools' .load_bamcols_from_scanBam_res: scanBam's per-range lists as one list of columns.
.bamcols <- function(res, param, with.which_label = FALSE) {
    if (!isTRUE(with.which_label) && !isFALSE(with.which_label))
        stop("'with.which_label' must be TRUE or FALSE")
    which_label <- names(res)
    names(res) <- NULL
    ans3 <- list()
    if (with.which_label) {
        if (is.null(which_label)) {
            warning("'which_label' is ignored when 'param' is missing or ",
                    "doesn't have a 'which' component")
        } else {
            if (anyDuplicated(which_label))
                which_label <- paste0(which_label, ".", seq_along(which_label))
            run_lens <- if (length(res) == 0L) integer(0)
                        else sapply(res, function(x) length(x[[1L]]))
            ans3 <- list(which_label = Rle(factor(which_label, levels = which_label), run_lens))
        }
    }
    ans1 <- lapply(setNames(bamWhat(param), bamWhat(param)), function(nm)
        .quick_unlist(lapply(res, "[[", nm)))
    ans2 <- lapply(setNames(bamTag(param), bamTag(param)), function(nm) {
        .quick_unlist(lapply(res, function(res_elt) {
            tag_elt <- res_elt[["tag"]][[nm]]
            if (is.null(tag_elt)) tag_elt <- rep.int(NA, length(res_elt[["rname"]]))
            tag_elt
        }))
    })
    c(ans1, ans2, ans3)
}

setMethod("readGAlignments", "Bams3File",
          function(file, index = file, use.names = FALSE, param = NULL, with.which_label = FALSE) {
    if (!isTRUE(use.names) && !isFALSE(use.names))
        stop("'use.names' must be TRUE or FALSE")
    if (is.null(param))
        param <- ScanBamParam()
    # No mates here (asMates is a BamFile feature): as GenomicAlignments without it.
    bamWhat(param) <- setdiff(bamWhat(param), c("groupid", "mate_status"))
    .with_open(file)
    what0 <- c("rname", "strand", "pos", "cigar")
    if (use.names)
        what0 <- c(what0, "qname")
    # As GenomicAlignments: mapped records only, and the columns a GAlignments needs.
    param2 <- param
    flag <- bamFlagAND(bamFlag(param, asInteger = TRUE), scanBamFlag(isUnmappedQuery = FALSE))
    if (!all(bamFlagAsBitMatrix(flag[["keep0"]]) | bamFlagAsBitMatrix(flag[["keep1"]])))
        stop("BAM flag filters to combine are incompatible")
    bamFlag(param2) <- flag
    bamWhat(param2) <- union(bamWhat(param), what0)
    res <- scanBam(file, param = param2)
    bamcols <- .bamcols(res, param2, with.which_label = with.which_label)
    seqlengths <- seqlengths(seqinfo(file))
    bad <- setdiff(levels(bamcols[["rname"]]), names(seqlengths))
    if (length(bad) != 0L) {
        warning("'rname' lengths not in the Bams3File header; seqlengths not used")
        seqlengths <- NULL
    }
    ans <- GAlignments(seqnames = bamcols$rname, pos = bamcols$pos, cigar = bamcols$cigar,
                       strand = bamcols$strand, seqlengths = seqlengths)
    if (use.names)
        names(ans) <- bamcols$qname
    colnames <- c(bamWhat(param), bamTag(param))
    if (with.which_label)
        colnames <- c(colnames, "which_label")
    if (length(colnames) != 0L) {
        df <- do.call(DataFrame, bamcols[colnames])
        colnames(df) <- colnames
        mcols(ans) <- df
    }
    ans
})

setMethod("coverage", "Bams3File",
          function(x, shift = 0L, width = NULL, weight = 1L, ..., param = ScanBamParam()) {
    coverage(readGAlignments(x, param = param), shift = shift, width = width,
             weight = weight, ...)
})
