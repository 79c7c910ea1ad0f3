## The Bams3File class: a BAMS3 dataset (a directory or s3://bucket/prefix) used where
## Rsamtools takes a BamFile. The native reader lives in an external pointer kept in an
## environment, so open() and close() act on the object the caller holds.

## `yieldSize` as BamFile's: on an open file, each scanBam() / readGAlignments() without `which`
## returns the next yieldSize records (the environment keeps the running query).
setClass("Bams3File", representation(path = "character", .handle = "environment",
                                     yieldSize = "integer"))

.check_yieldSize <- function(yieldSize) {
    yieldSize <- suppressWarnings(as.integer(yieldSize))
    if (length(yieldSize) != 1L || (!is.na(yieldSize) && yieldSize <= 0L))
        stop("'yieldSize' must be NA or a single positive integer")
    yieldSize
}

Bams3File <- function(path, yieldSize = NA_integer_) {
    if (!is.character(path) || length(path) != 1L || is.na(path) || !nzchar(path))
        stop("'path' must be a single non-empty string (a dataset directory or s3://bucket/prefix)")
    if (!grepl("^s3://", path))
        path <- path.expand(path)
    handle <- new.env(parent = emptyenv())
    handle$xp <- NULL
    handle$q <- NULL
    new("Bams3File", path = path, .handle = handle, yieldSize = .check_yieldSize(yieldSize))
}

setMethod("yieldSize", "Bams3File", function(object, ...) object@yieldSize)

setReplaceMethod("yieldSize", "Bams3File", function(object, ..., value) {
    object@yieldSize <- .check_yieldSize(value)
    object
})

## The running query of a yieldSize iteration (NULL: none).
.yield_query_free <- function(con) {
    q <- con@.handle$q
    if (!is.null(q)) {
        .Call(C_query_free, q)
        con@.handle$q <- NULL
    }
}

## Runs a native call; its errors become conditions of class "bams3_error" carrying the
## library's message and status code.
.native <- function(fun, ...) {
    .Call(C_last_code)
    tryCatch(.Call(fun, ...), error = function(e) {
        code <- .Call(C_last_code)
        cond <- structure(
            class = c("bams3_error", "error", "condition"),
            list(message = conditionMessage(e), call = NULL, code = code,
                 status = if (code != 0L) .Call(C_strerror, code) else NA_character_))
        stop(cond)
    })
}

.extptr <- function(x) {
    if (is.null(x@.handle$xp))
        stop("the Bams3File is not open: ", x@path)
    x@.handle$xp
}

## open() and close() are S3 methods, as Rsamtools' for BamFile.
open.Bams3File <- function(con, ...) {
    if (!isOpen(con)) {
        .yield_query_free(con)
        con@.handle$xp <- .native(C_open, con@path)
    }
    invisible(con)
}

close.Bams3File <- function(con, ...) {
    .yield_query_free(con)
    xp <- con@.handle$xp
    if (!is.null(xp)) {
        .Call(C_close, xp)
        con@.handle$xp <- NULL
    }
    invisible(con)
}

setMethod("isOpen", "Bams3File", function(con, rw = "") {
    xp <- con@.handle$xp
    !is.null(xp) && .Call(C_is_open, xp)
})

setMethod("path", "Bams3File", function(object, ...) object@path)

setMethod("show", "Bams3File", function(object) {
    cat("class:", class(object), "\n")
    cat("path:", object@path, "\n")
    cat("isOpen:", isOpen(object), "\n")
    cat("yieldSize:", yieldSize(object), "\n")
})

## Opens `file` for the duration of the caller when it is not open.
.with_open <- function(file, envir = parent.frame()) {
    if (!isOpen(file)) {
        open(file)
        thunk <- as.call(list(function() close(file)))
        do.call(on.exit, list(thunk, add = TRUE), envir = envir)
    }
    invisible(file)
}

.references <- function(file) {
    .with_open(file)
    refs <- .native(C_references, .extptr(file))
    names(refs) <- c("names", "lengths")
    refs
}

setMethod("seqinfo", "Bams3File", function(x) {
    refs <- .references(x)
    keep <- !(duplicated(refs$names))
    Seqinfo(refs$names[keep], as.integer(refs$lengths[keep]))
})

## The header as scanBamHeader() gives it for a BamFile: `targets` (named reference lengths)
## and `text` (one element per header line, named by its record type, holding the line's
## remaining tab-separated fields).
setMethod("scanBamHeader", "Bams3File", function(files, ..., what = c("targets", "text")) {
    .with_open(files)
    targets <- NULL
    text <- NULL
    if ("targets" %in% what) {
        refs <- .native(C_references, .extptr(files))
        targets <- structure(as.integer(refs[[2L]]), names = refs[[1L]])
    }
    if ("text" %in% what) {
        lines <- strsplit(.native(C_header_text, .extptr(files)), "\n", fixed = TRUE)[[1L]]
        lines <- lines[nzchar(lines)]
        fields <- strsplit(lines, "\t", fixed = TRUE)
        text <- lapply(fields, `[`, -1L)
        names(text) <- vapply(fields, `[`, "", 1L)
    }
    list(targets = targets, text = text)
})

## The header text exactly as stored (what `samtools view -H` prints).
bams3HeaderText <- function(file) {
    .with_open(file)
    .native(C_header_text, .extptr(file))
}
