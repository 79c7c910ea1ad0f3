/*
 * R glue over the libbams3 C ABI.
 *
 * Rules kept here: every native handle lives in an external pointer with a finalizer from the
 * moment it exists, so an R error or an interrupt (both longjmp) can never leak one; the
 * library's last error text is copied before anything is freed or R is called; records are
 * read a batch at a time (bams3_query_next_batch), never one accessor call per field.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <R.h>
#include <Rinternals.h>
#include <R_ext/Rdynload.h>

#include "bams3.h"
#include "XVector_interface.h"

/* ---- errors ----------------------------------------------------------------------------- */

static int last_code = 0;

/* Copies the library's message first, then raises it as an R error (the R side turns it into a
 * condition of class bams3_error carrying the code from C_last_code). */
static void fail(int rc, const char *context)
{
    char msg[4096];
    const char *e = bams3_last_error();
    if (context && *context)
        snprintf(msg, sizeof msg, "%s: %s", context, (e && *e) ? e : bams3_strerror(rc));
    else
        snprintf(msg, sizeof msg, "%s", (e && *e) ? e : bams3_strerror(rc));
    last_code = rc;
    Rf_error("%s", msg);
}

SEXP C_last_code(void)
{
    return Rf_ScalarInteger(last_code);
}

SEXP C_strerror(SEXP code)
{
    return Rf_mkString(bams3_strerror(Rf_asInteger(code)));
}

SEXP C_version(void)
{
    return Rf_mkString(bams3_version());
}

/* ---- handles ---------------------------------------------------------------------------- */

static void reader_finalize(SEXP xp)
{
    bams3_reader *r = (bams3_reader *) R_ExternalPtrAddr(xp);
    if (r) {
        bams3_reader_free(r);
        R_ClearExternalPtr(xp);
    }
}

static void query_finalize(SEXP xp)
{
    bams3_query *q = (bams3_query *) R_ExternalPtrAddr(xp);
    if (q) {
        bams3_query_free(q);
        R_ClearExternalPtr(xp);
    }
}

static void batch_finalize(SEXP xp)
{
    bams3_batch *b = (bams3_batch *) R_ExternalPtrAddr(xp);
    if (b) {
        bams3_batch_free(b);
        R_ClearExternalPtr(xp);
    }
}

/* An empty external pointer with its finalizer already registered: the handle is stored in it
 * right after the library creates it, with no R allocation in between. */
static SEXP new_handle(const char *tag, R_CFinalizer_t fin)
{
    SEXP xp = PROTECT(R_MakeExternalPtr(NULL, Rf_install(tag), R_NilValue));
    R_RegisterCFinalizerEx(xp, fin, TRUE);
    UNPROTECT(1);
    return xp;
}

static bams3_reader *get_reader(SEXP xp)
{
    if (TYPEOF(xp) != EXTPTRSXP || R_ExternalPtrTag(xp) != Rf_install("bams3_reader"))
        Rf_error("not a bams3 reader handle");
    bams3_reader *r = (bams3_reader *) R_ExternalPtrAddr(xp);
    if (!r)
        Rf_error("the Bams3File is not open");
    return r;
}

SEXP C_open(SEXP location)
{
    if (!Rf_isString(location) || Rf_length(location) != 1 || STRING_ELT(location, 0) == NA_STRING)
        Rf_error("'path' must be a single string");
    const char *loc = Rf_translateCharUTF8(STRING_ELT(location, 0));
    SEXP xp = PROTECT(new_handle("bams3_reader", reader_finalize));
    bams3_reader *r = NULL;
    int rc = bams3_reader_open(loc, &r);
    if (rc != BAMS3_OK) {
        UNPROTECT(1);
        fail(rc, NULL);
    }
    R_SetExternalPtrAddr(xp, r);
    UNPROTECT(1);
    return xp;
}

SEXP C_close(SEXP xp)
{
    if (TYPEOF(xp) == EXTPTRSXP)
        reader_finalize(xp);
    return R_NilValue;
}

SEXP C_is_open(SEXP xp)
{
    return Rf_ScalarLogical(TYPEOF(xp) == EXTPTRSXP && R_ExternalPtrAddr(xp) != NULL);
}

SEXP C_header_text(SEXP xp)
{
    const char *text = NULL;
    int rc = bams3_reader_header_text(get_reader(xp), &text);
    if (rc != BAMS3_OK)
        fail(rc, NULL);
    return Rf_ScalarString(Rf_mkCharCE(text, CE_UTF8));
}

/* list(names = character, lengths = double) */
SEXP C_references(SEXP xp)
{
    bams3_reader *r = get_reader(xp);
    size_t n = 0;
    int rc = bams3_reader_n_references(r, &n);
    if (rc != BAMS3_OK)
        fail(rc, NULL);
    SEXP names = PROTECT(Rf_allocVector(STRSXP, (R_xlen_t) n));
    SEXP lens = PROTECT(Rf_allocVector(REALSXP, (R_xlen_t) n));
    for (size_t i = 0; i < n; ++i) {
        const char *name = NULL;
        int64_t len = 0;
        rc = bams3_reader_reference(r, i, &name, &len);
        if (rc != BAMS3_OK) {
            UNPROTECT(2);
            fail(rc, NULL);
        }
        SET_STRING_ELT(names, (R_xlen_t) i, Rf_mkCharCE(name, CE_UTF8));
        REAL(lens)[i] = (double) len;
    }
    SEXP ans = PROTECT(Rf_allocVector(VECSXP, 2));
    SET_VECTOR_ELT(ans, 0, names);
    SET_VECTOR_ELT(ans, 1, lens);
    UNPROTECT(3);
    return ans;
}

SEXP C_stats_json(SEXP xp)
{
    char *json = NULL;
    int rc = bams3_reader_stats_json(get_reader(xp), &json);
    if (rc != BAMS3_OK)
        fail(rc, NULL);
    /* mkChar may longjmp on allocation failure: copy into R-managed memory first. */
    size_t len = strlen(json);
    char *copy = R_alloc(len + 1, 1);
    memcpy(copy, json, len + 1);
    bams3_string_free(json);
    return Rf_ScalarString(Rf_mkCharCE(copy, CE_UTF8));
}

/* ---- queries ---------------------------------------------------------------------------- */

/* A query of `reader` over `region` (NULL: everything) with `filter` (c(min_mapq, require,
 * exclude)), decoding only what `columns` needs (bams3_reader_query_columns), in an external
 * pointer whose finalizer frees it. */
static SEXP open_query(SEXP reader, SEXP region, SEXP filter, uint32_t columns)
{
    bams3_reader *r = get_reader(reader);
    bams3_filter f;
    memset(&f, 0, sizeof f);
    if (Rf_length(filter) != 3)
        Rf_error("internal: filter must be c(min_mapq, require, exclude)");
    int mq = INTEGER(filter)[0];
    f.min_mapq = (uint8_t) (mq < 0 ? 0 : mq > 255 ? 255 : mq);
    f.require_flags = (uint16_t) INTEGER(filter)[1];
    f.exclude_flags = (uint16_t) INTEGER(filter)[2];
    const char *reg = NULL;
    if (!Rf_isNull(region))
        reg = Rf_translateCharUTF8(STRING_ELT(region, 0));
    SEXP qxp = PROTECT(new_handle("bams3_query", query_finalize));
    bams3_query *q = NULL;
    int rc = bams3_reader_query_columns(r, reg, &f, columns, &q);
    if (rc != BAMS3_OK) {
        UNPROTECT(1);
        fail(rc, NULL);
    }
    R_SetExternalPtrAddr(qxp, q);
    UNPROTECT(1);
    return qxp;
}

/* Starts a query (open_query) and a batch of the same columns, each stored in an external
 * pointer (returned through *qxp and *bxp, both PROTECTed by the caller). */
static void start_query(SEXP reader, SEXP region, SEXP filter, uint32_t columns, int capacity,
                        SEXP *qxp, SEXP *bxp)
{
    *qxp = PROTECT(open_query(reader, region, filter, columns));
    *bxp = PROTECT(new_handle("bams3_batch", batch_finalize));
    bams3_batch *b = NULL;
    int rc = bams3_batch_new(columns, (size_t) capacity, &b);
    if (rc != BAMS3_OK) {
        UNPROTECT(2);
        fail(rc, NULL); /* the query is freed by its finalizer */
    }
    R_SetExternalPtrAddr(*bxp, b);
    UNPROTECT(2);
}

/* Next batch, or an R error carrying the library's message (handles freed first). */
static int next_batch(SEXP qxp, SEXP bxp, bams3_batch_columns *cols)
{
    bams3_query *q = (bams3_query *) R_ExternalPtrAddr(qxp);
    bams3_batch *b = (bams3_batch *) R_ExternalPtrAddr(bxp);
    int n = bams3_query_next_batch(q, b);
    if (n < 0) {
        char msg[4096];
        snprintf(msg, sizeof msg, "%s", bams3_last_error());
        query_finalize(qxp);
        batch_finalize(bxp);
        last_code = n;
        Rf_error("%s", msg);
    }
    if (n > 0) {
        int rc = bams3_batch_get_columns(b, cols);
        if (rc != BAMS3_OK)
            fail(rc, NULL);
    }
    return n;
}

/* Whether a F_CIGAR text is "simple" in Rsamtools' sense: no operation, or one M. */
static int simple_cigar(const char *c, size_t len)
{
    if (len == 0)
        return 1;
    for (size_t i = 0; i + 1 < len; ++i)
        if (c[i] < '0' || c[i] > '9')
            return 0;
    return c[len - 1] == 'M';
}

/* ScanBamParam's tagFilter, read once per call (R_alloc'ed, released when the call returns). */
typedef struct {
    int n;
    char (*names)[2];
    SEXP *values; /* INTSXP or STRSXP */
} tagfilter_t;

static tagfilter_t *tagfilter_from(SEXP tl);
static int tagfilter_keep(const tagfilter_t *tf, const uint8_t *p, const uint8_t *end, double irec);

/* c(records, nucleotides) for one region (NULL: everything). */
SEXP C_count(SEXP reader, SEXP region, SEXP filter, SEXP simpleCigar, SEXP capacity, SEXP tagFilter)
{
    int simple = Rf_asLogical(simpleCigar) == TRUE;
    tagfilter_t *tf = tagfilter_from(tagFilter);
    SEXP qxp, bxp;
    start_query(reader, region, filter, (simple ? BAMS3_COLUMN_CIGAR : 0) | (tf ? BAMS3_COLUMN_AUX : 0),
                Rf_asInteger(capacity), &qxp, &bxp);
    PROTECT(qxp);
    PROTECT(bxp);
    double records = 0, nucleotides = 0;
    bams3_batch_columns c;
    int n;
    while ((n = next_batch(qxp, bxp, &c)) > 0) {
        for (int i = 0; i < n; ++i) {
            if (simple && !simple_cigar(c.cigar + c.cigar_offsets[i],
                                        c.cigar_offsets[i + 1] - c.cigar_offsets[i]))
                continue;
            if (tf && !tagfilter_keep(tf, c.aux + c.aux_offsets[i], c.aux + c.aux_offsets[i + 1],
                                      records + 1))
                continue;
            records += 1;
            nucleotides += c.seq_len[i];
        }
        R_CheckUserInterrupt();
    }
    query_finalize(qxp);
    batch_finalize(bxp);
    SEXP ans = PROTECT(Rf_allocVector(REALSXP, 2));
    REAL(ans)[0] = records;
    REAL(ans)[1] = nucleotides;
    UNPROTECT(3);
    return ans;
}

/* Rsamtools' template order. */
enum {
    F_QNAME, F_FLAG, F_RNAME, F_STRAND, F_POS, F_QWIDTH, F_MAPQ, F_CIGAR, F_MRNM, F_MPOS, F_ISIZE, F_SEQ, F_QUAL, F_TAG,
    F_N_FIELDS,
    /* private slots of the accumulator */
    F_SEQ_WIDTH = F_N_FIELDS, F_QUAL_WIDTH, F_N_SLOTS
};

static const char SEQ_KEY[16] = {'-', 'A', 'C', 'M', 'G', 'R', 'S', 'V',
                                 'T', 'W', 'Y', 'H', 'K', 'D', 'B', 'N'};

static char complement(char c)
{
    switch (c) {
    case 'A': return 'T';
    case 'C': return 'G';
    case 'G': return 'C';
    case 'T': return 'A';
    case 'M': return 'K';
    case 'R': return 'Y';
    case 'Y': return 'R';
    case 'K': return 'M';
    case 'V': return 'B';
    case 'H': return 'D';
    case 'D': return 'H';
    case 'B': return 'V';
    default: return c;
    }
}

/* The output columns, all held in the PROTECTed list `store` (so a longjmp frees them), each
 * allocated once at its final length `cap` (the number of records kept). */
typedef struct {
    SEXP store;
    int want[F_N_FIELDS];
    R_xlen_t cap;
    int ntags;
    char (*tagnames)[2];
} acc_t;

/* The filled batches of one scan, kept until the output is allocated at its exact size, then
 * copied out and freed one by one: no R allocation happens while records are read (so no
 * garbage collection rescans half-built vectors), and the peak is the output plus one batch.
 * Owned by an external pointer, so an error or an interrupt frees them. */
typedef struct {
    bams3_batch **b;
    size_t *kept;   /* records of b[i] the scan keeps (simpleCigar and tagFilter drop some) */
    uint8_t **keep; /* which ones (NULL: all) */
    size_t n, cap;
} batches_t;

static void batches_free(batches_t *s)
{
    for (size_t i = 0; i < s->n; ++i) {
        bams3_batch_free(s->b[i]);
        free(s->keep[i]);
    }
    free(s->b);
    free(s->kept);
    free(s->keep);
    free(s);
}

static void batches_finalize(SEXP xp)
{
    batches_t *s = (batches_t *) R_ExternalPtrAddr(xp);
    if (s) {
        R_ClearExternalPtr(xp);
        batches_free(s);
    }
}

/* Room for one more batch (an R error when memory runs out; the finalizer frees what exists). */
static void batches_reserve(batches_t *s)
{
    if (s->n < s->cap)
        return;
    size_t cap = s->cap ? 2 * s->cap : 64;
    bams3_batch **b = realloc(s->b, cap * sizeof *b);
    if (!b)
        Rf_error("out of memory");
    s->b = b;
    size_t *k = realloc(s->kept, cap * sizeof *k);
    if (!k)
        Rf_error("out of memory");
    s->kept = k;
    uint8_t **m = realloc(s->keep, cap * sizeof *m);
    if (!m)
        Rf_error("out of memory");
    s->keep = m;
    s->cap = cap;
}

static int32_t rd_i32(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }
static uint32_t rd_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static int16_t rd_i16(const uint8_t *p) { int16_t v; memcpy(&v, p, 2); return v; }
static uint16_t rd_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

static const char *type_name(SEXPTYPE t) { return Rf_type2char(t); }

/* The tag vector for tag t, allocated on first sight with the type of `ty` (Rsamtools' rule),
 * or an error when a later record has another type. */
static SEXP tag_vector(acc_t *a, int t, SEXPTYPE want)
{
    SEXP tags = VECTOR_ELT(a->store, F_TAG);
    SEXP v = VECTOR_ELT(tags, t);
    if (Rf_isNull(v)) {
        v = PROTECT(Rf_allocVector(want, a->cap));
        switch (want) {
        case INTSXP: for (R_xlen_t i = 0; i < a->cap; ++i) INTEGER(v)[i] = NA_INTEGER; break;
        case REALSXP: for (R_xlen_t i = 0; i < a->cap; ++i) REAL(v)[i] = NA_REAL; break;
        case STRSXP: for (R_xlen_t i = 0; i < a->cap; ++i) SET_STRING_ELT(v, i, NA_STRING); break;
        case RAWSXP: memset(RAW(v), 0, (size_t) a->cap); break;
        default: break; /* VECSXP starts as NULLs */
        }
        SET_VECTOR_ELT(tags, t, v);
        UNPROTECT(1);
        return v;
    }
    if ((SEXPTYPE) TYPEOF(v) != want)
        Rf_error("tag '%.2s' type is inconsistent; was '%s', is '%s'", a->tagnames[t],
                 type_name(TYPEOF(v)), type_name(want));
    return v;
}

/* A B-array value as Rsamtools 2.14 reads it (c/C as unsigned bytes, s/S as signed 16-bit,
 * i/I as signed 32-bit, f as double). */
static SEXP b_array(const uint8_t *p, const uint8_t *end)
{
    if (end - p < 5)
        return R_NilValue;
    uint8_t sub = p[0];
    uint32_t n = rd_u32(p + 1);
    p += 5;
    size_t size = (sub == 'c' || sub == 'C') ? 1 : (sub == 's' || sub == 'S') ? 2 : 4;
    if ((size_t) (end - p) < (size_t) n * size)
        return R_NilValue;
    SEXP v;
    if (sub == 'f') {
        v = PROTECT(Rf_allocVector(REALSXP, n));
        for (uint32_t i = 0; i < n; ++i) {
            float f;
            memcpy(&f, p + 4 * (size_t) i, 4);
            REAL(v)[i] = f;
        }
    } else {
        v = PROTECT(Rf_allocVector(INTSXP, n));
        for (uint32_t i = 0; i < n; ++i) {
            const uint8_t *q = p + size * i;
            INTEGER(v)[i] = size == 1 ? (int) q[0] : size == 2 ? (int) rd_i16(q) : (int) rd_i32(q);
        }
    }
    UNPROTECT(1);
    return v;
}

static void parse_tags(acc_t *a, R_xlen_t idx, const uint8_t *p, const uint8_t *end)
{
    uint32_t seen = 0; /* first occurrence wins, as bam_aux_get */
    while (end - p >= 3) {
        char t0 = (char) p[0], t1 = (char) p[1];
        uint8_t ty = p[2];
        const uint8_t *v = p + 3;
        size_t len;
        switch (ty) {
        case 'A': case 'c': case 'C': len = 1; break;
        case 's': case 'S': len = 2; break;
        case 'i': case 'I': case 'f': len = 4; break;
        case 'Z': case 'H': {
            const uint8_t *z = memchr(v, 0, (size_t) (end - v));
            if (!z)
                return;
            len = (size_t) (z - v) + 1;
            break;
        }
        case 'B': {
            if (end - v < 5)
                return;
            uint8_t sub = v[0];
            size_t sz = (sub == 'c' || sub == 'C') ? 1 : (sub == 's' || sub == 'S') ? 2 : 4;
            len = 5 + sz * (size_t) rd_u32(v + 1);
            break;
        }
        default:
            return; /* the library checked the tags; nothing else can follow */
        }
        if ((size_t) (end - v) < len)
            return;
        for (int t = 0; t < a->ntags; ++t) {
            if (a->tagnames[t][0] != t0 || a->tagnames[t][1] != t1 || (seen >> t) & 1)
                continue;
            if (t < 32)
                seen |= 1u << t;
            SEXP out;
            switch (ty) {
            case 'c': out = tag_vector(a, t, INTSXP); INTEGER(out)[idx] = (int8_t) v[0]; break;
            case 'C': out = tag_vector(a, t, INTSXP); INTEGER(out)[idx] = v[0]; break;
            case 's': out = tag_vector(a, t, INTSXP); INTEGER(out)[idx] = rd_i16(v); break;
            case 'S': out = tag_vector(a, t, INTSXP); INTEGER(out)[idx] = rd_u16(v); break;
            case 'i': out = tag_vector(a, t, INTSXP); INTEGER(out)[idx] = rd_i32(v); break;
            case 'I': out = tag_vector(a, t, INTSXP); INTEGER(out)[idx] = (int) rd_u32(v); break;
            case 'f': {
                float f;
                memcpy(&f, v, 4);
                out = tag_vector(a, t, REALSXP);
                REAL(out)[idx] = f;
                break;
            }
            case 'A':
                out = tag_vector(a, t, STRSXP);
                SET_STRING_ELT(out, idx, Rf_mkCharLen((const char *) v, 1));
                break;
            case 'Z':
                out = tag_vector(a, t, STRSXP);
                SET_STRING_ELT(out, idx, Rf_mkCharLen((const char *) v, (int) (len - 1)));
                break;
            case 'H':
                out = tag_vector(a, t, RAWSXP);
                RAW(out)[idx] = v[0];
                break;
            case 'B':
                out = tag_vector(a, t, VECSXP);
                SET_VECTOR_ELT(out, idx, b_array(v, v + len));
                break;
            default:
                break;
            }
        }
        p = v + len;
    }
}

/* The first tag named t0 t1 in p..end: its type byte, or NULL. */
static const uint8_t *find_tag(const uint8_t *p, const uint8_t *end, char t0, char t1)
{
    while (end - p >= 3) {
        const uint8_t *v = p + 3;
        size_t len;
        switch (p[2]) {
        case 'A': case 'c': case 'C': len = 1; break;
        case 's': case 'S': len = 2; break;
        case 'i': case 'I': case 'f': len = 4; break;
        case 'Z': case 'H': {
            const uint8_t *z = memchr(v, 0, (size_t) (end - v));
            if (!z)
                return NULL;
            len = (size_t) (z - v) + 1;
            break;
        }
        case 'B': {
            if (end - v < 5)
                return NULL;
            uint8_t sub = v[0];
            size_t sz = (sub == 'c' || sub == 'C') ? 1 : (sub == 's' || sub == 'S') ? 2 : 4;
            len = 5 + sz * (size_t) rd_u32(v + 1);
            break;
        }
        default:
            return NULL;
        }
        if ((size_t) (end - v) < len)
            return NULL;
        if ((char) p[0] == t0 && (char) p[1] == t1)
            return p + 2;
        p = v + len;
    }
    return NULL;
}

static tagfilter_t *tagfilter_from(SEXP tl)
{
    if (Rf_isNull(tl) || Rf_length(tl) == 0)
        return NULL;
    if (TYPEOF(tl) != VECSXP)
        Rf_error("internal: tagFilter must be a list");
    SEXP names = Rf_getAttrib(tl, R_NamesSymbol);
    int n = Rf_length(tl);
    if (Rf_length(names) != n)
        Rf_error("'tagFilter' must be a named list");
    tagfilter_t *tf = (tagfilter_t *) R_alloc(1, sizeof *tf);
    tf->n = n;
    tf->names = (char (*)[2]) R_alloc((size_t) n, 2);
    tf->values = (SEXP *) R_alloc((size_t) n, sizeof(SEXP));
    for (int i = 0; i < n; ++i) {
        const char *nm = CHAR(STRING_ELT(names, i));
        if (strlen(nm) != 2)
            Rf_error("tag names must have two characters: '%s'", nm);
        tf->names[i][0] = nm[0];
        tf->names[i][1] = nm[1];
        SEXP v = VECTOR_ELT(tl, i);
        if (Rf_length(v) < 1)
            Rf_error("elements of tag filter list must have non-zero length");
        if (TYPEOF(v) != INTSXP && TYPEOF(v) != STRSXP)
            Rf_error("unpermitted tag filter input type '%s'", Rf_type2char(TYPEOF(v)));
        tf->values[i] = v; /* protected by the list the caller holds */
    }
    return tf;
}

/* Rsamtools' _tagfilter: every filter tag present with one of its values; a tag whose type
 * does not match its filter's, or of a type tagFilter cannot compare, is an error. */
static int tagfilter_keep(const tagfilter_t *tf, const uint8_t *p, const uint8_t *end, double irec)
{
    for (int i = 0; i < tf->n; ++i) {
        const uint8_t *t = find_tag(p, end, tf->names[i][0], tf->names[i][1]);
        if (!t)
            return 0;
        SEXP vals = tf->values[i];
        R_xlen_t nv = Rf_xlength(vals);
        const uint8_t *v = t + 1;
        char tag[3] = {tf->names[i][0], tf->names[i][1], 0};
        int iv;
        switch (t[0]) {
        case 'c': iv = (int8_t) v[0]; goto integer;
        case 'C': iv = v[0]; goto integer;
        case 's': iv = rd_i16(v); goto integer;
        case 'S': iv = rd_u16(v); goto integer;
        case 'i': iv = rd_i32(v); goto integer;
        case 'I': iv = (int) rd_u32(v);
        integer:
            if (TYPEOF(vals) != INTSXP)
                Rf_error("tag '%s' type ('integer') does not match tagFilter type\n"
                         "    BAM read tag:   %s:i:%d\n    tagFilter type: character()\n"
                         "    Record number:  %.0f", tag, tag, iv, irec);
            {
                R_xlen_t j = 0;
                while (j < nv && INTEGER(vals)[j] != iv)
                    ++j;
                if (j == nv)
                    return 0;
            }
            break;
        case 'A':
        case 'Z': {
            if (TYPEOF(vals) != STRSXP || (t[0] == 'A' && strlen(CHAR(STRING_ELT(vals, 0))) != 1))
                Rf_error("tag '%s' type ('%s') does not match tagFilter type\n"
                         "    Record number:  %.0f", tag,
                         t[0] == 'A' ? "single printable character" : "string", irec);
            R_xlen_t j = 0;
            if (t[0] == 'A') {
                while (j < nv && CHAR(STRING_ELT(vals, j))[0] != (char) v[0])
                    ++j;
            } else {
                while (j < nv && strcmp(CHAR(STRING_ELT(vals, j)), (const char *) v) != 0)
                    ++j;
            }
            if (j == nv)
                return 0;
            break;
        }
        default:
            Rf_error("tag '%s' type ('%s') unsupported by tagFilter\n    Record number: %.0f", tag,
                     t[0] == 'f' ? "float" : t[0] == 'H' ? "hex array" : "array", irec);
        }
    }
    return 1;
}

/* The columns a scan of the fields `what` wants (a logical over F_QNAME..F_QUAL, NULL: every
 * field) needs decoded: names, bases, qualities and mate fields are skipped when not asked for. */
static uint32_t what_columns(SEXP what)
{
    if (Rf_isNull(what))
        return BAMS3_COLUMN_ALL;
    if (TYPEOF(what) != LGLSXP || Rf_length(what) != F_N_FIELDS - 1)
        Rf_error("internal: 'what' must have %d entries", F_N_FIELDS - 1);
    const int *w = LOGICAL(what);
    uint32_t columns = BAMS3_COLUMN_CIGAR | BAMS3_COLUMN_AUX;
    if (w[F_QNAME] == TRUE) columns |= BAMS3_COLUMN_NAME;
    if (w[F_SEQ] == TRUE) columns |= BAMS3_COLUMN_SEQ;
    if (w[F_QUAL] == TRUE) columns |= BAMS3_COLUMN_QUAL;
    if (w[F_MRNM] == TRUE || w[F_MPOS] == TRUE || w[F_ISIZE] == TRUE) columns |= BAMS3_COLUMN_MATE;
    return columns;
}

/* A query of `reader` over `region` (NULL: everything) with `filter`, in an external pointer,
 * decoding what a scan of the fields `what` needs (NULL: every field). */
SEXP C_query(SEXP reader, SEXP region, SEXP filter, SEXP what)
{
    return open_query(reader, region, filter, what_columns(what));
}

SEXP C_query_free(SEXP qxp)
{
    if (TYPEOF(qxp) == EXTPTRSXP)
        query_finalize(qxp);
    return R_NilValue;
}

SEXP C_query_done(SEXP qxp)
{
    return Rf_ScalarLogical(TYPEOF(qxp) != EXTPTRSXP || R_ExternalPtrAddr(qxp) == NULL);
}

static bams3_query *get_query(SEXP qxp)
{
    if (TYPEOF(qxp) != EXTPTRSXP || R_ExternalPtrTag(qxp) != Rf_install("bams3_query"))
        Rf_error("internal: not a bams3 query handle");
    return (bams3_query *) R_ExternalPtrAddr(qxp);
}

/* Rsamtools' qual width: the Phred+33 text cut at a NUL (raw 223), in output order. */
static size_t qual_width(const uint8_t *src, size_t len, int rc)
{
    if (rc) {
        for (size_t j = 0; j < len; ++j)
            if (src[len - 1 - j] == 223)
                return j;
        return len;
    }
    const uint8_t *z = memchr(src, 223, len);
    return z ? (size_t) (z - src) : len;
}

/*
 * scanBam over an open query: reads up to `yield` kept records (NA: all of them) and returns a
 * list in Rsamtools' template order with NULL for fields not asked for. rname/mrnm are 1-based
 * integer codes and strand 1/2/NA (the R side adds the factor attributes); seq is a
 * DNAStringSet built through `dna_lkup`, qual a BStringSet (the R side makes it a
 * PhredQuality). The query is freed once it has no more records (C_query_done then says so).
 */
SEXP C_scan(SEXP qxp, SEXP what, SEXP tags, SEXP opts, SEXP dna_lkup, SEXP yield, SEXP tagFilter)
{
    tagfilter_t *tf = tagfilter_from(tagFilter);
    int revcomp = LOGICAL(opts)[0] == TRUE, simple = LOGICAL(opts)[1] == TRUE;
    const int *lkup = INTEGER(dna_lkup);
    double ylim = Rf_asReal(yield);
    size_t limit = (ISNAN(ylim) || ylim <= 0) ? SIZE_MAX : (size_t) ylim;
    if (Rf_length(what) != F_N_FIELDS - 1)
        Rf_error("internal: 'what' must have %d entries", F_N_FIELDS - 1);
    acc_t a;
    memset(&a, 0, sizeof a);
    for (int i = 0; i < F_N_FIELDS - 1; ++i)
        a.want[i] = LOGICAL(what)[i] == TRUE;
    a.ntags = Rf_length(tags);
    a.want[F_TAG] = a.ntags > 0;
    a.tagnames = (char (*)[2]) R_alloc((size_t) a.ntags + 1, 2);
    for (int t = 0; t < a.ntags; ++t) {
        const char *s = CHAR(STRING_ELT(tags, t));
        if (strlen(s) != 2)
            Rf_error("tag names must have two characters: '%s'", s);
        a.tagnames[t][0] = s[0];
        a.tagnames[t][1] = s[1];
    }
    uint32_t columns = 0;
    if (a.want[F_QNAME]) columns |= BAMS3_COLUMN_NAME;
    if (a.want[F_CIGAR] || simple) columns |= BAMS3_COLUMN_CIGAR;
    if (a.want[F_SEQ]) columns |= BAMS3_COLUMN_SEQ;
    if (a.want[F_QUAL]) columns |= BAMS3_COLUMN_QUAL;
    if (a.want[F_TAG] || tf) columns |= BAMS3_COLUMN_AUX;

    /* 1. Read: batches only, no R allocation. */
    SEXP sxp = PROTECT(new_handle("bams3_batches", batches_finalize));
    batches_t *s = calloc(1, sizeof *s);
    if (!s)
        Rf_error("out of memory");
    R_SetExternalPtrAddr(sxp, s);
    size_t total = 0;
    while (total < limit && get_query(qxp) != NULL) {
        size_t want = limit - total;
        size_t capacity = want < 65536 ? want : 65536;
        batches_reserve(s);
        bams3_batch *b = NULL;
        int rc = bams3_batch_new(columns, capacity, &b);
        if (rc != BAMS3_OK)
            fail(rc, NULL);
        s->b[s->n] = b;
        s->kept[s->n] = 0;
        s->keep[s->n] = NULL;
        s->n++;
        int n = bams3_query_next_batch(get_query(qxp), b);
        if (n < 0) {
            char msg[4096];
            snprintf(msg, sizeof msg, "%s", bams3_last_error());
            query_finalize(qxp);
            last_code = n;
            Rf_error("%s", msg);
        }
        if (n == 0) {
            query_finalize(qxp);
            break;
        }
        size_t kept = (size_t) n;
        if (simple || tf) {
            bams3_batch_columns c;
            rc = bams3_batch_get_columns(b, &c);
            if (rc != BAMS3_OK)
                fail(rc, NULL);
            uint8_t *keep = malloc((size_t) n);
            if (!keep)
                Rf_error("out of memory");
            s->keep[s->n - 1] = keep;
            kept = 0;
            for (int i = 0; i < n; ++i) {
                int k = 1;
                if (simple)
                    k = simple_cigar(c.cigar + c.cigar_offsets[i],
                                     c.cigar_offsets[i + 1] - c.cigar_offsets[i]);
                if (k && tf)
                    k = tagfilter_keep(tf, c.aux + c.aux_offsets[i], c.aux + c.aux_offsets[i + 1],
                                       (double) (total + kept + 1));
                keep[i] = (uint8_t) k;
                kept += (size_t) k;
            }
        }
        s->kept[s->n - 1] = kept;
        total += kept;
        R_CheckUserInterrupt();
    }
    if (total > (size_t) R_XLEN_T_MAX || total > (size_t) INT_MAX)
        Rf_error("too many records for one scanBam result (%.0f)", (double) total);

    /* 2. The output at its exact size. */
    R_xlen_t N = (R_xlen_t) total;
    a.cap = N;
    a.store = PROTECT(Rf_allocVector(VECSXP, F_N_SLOTS));
    for (int i = 0; i < F_N_FIELDS; ++i) {
        if (!a.want[i] || i == F_SEQ || i == F_QUAL)
            continue;
        SEXPTYPE t = (i == F_QNAME || i == F_CIGAR) ? STRSXP : (i == F_TAG) ? VECSXP : INTSXP;
        SET_VECTOR_ELT(a.store, i, Rf_allocVector(t, i == F_TAG ? a.ntags : N));
    }
    if (a.want[F_TAG])
        Rf_setAttrib(VECTOR_ELT(a.store, F_TAG), R_NamesSymbol, tags);
    /* Widths first (the XRawLists are allocated from them). */
    int *sw = NULL, *qw = NULL;
    if (a.want[F_SEQ]) {
        SET_VECTOR_ELT(a.store, F_SEQ_WIDTH, Rf_allocVector(INTSXP, N));
        sw = INTEGER(VECTOR_ELT(a.store, F_SEQ_WIDTH));
    }
    if (a.want[F_QUAL]) {
        SET_VECTOR_ELT(a.store, F_QUAL_WIDTH, Rf_allocVector(INTSXP, N));
        qw = INTEGER(VECTOR_ELT(a.store, F_QUAL_WIDTH));
    }
    if (sw || qw) {
        R_xlen_t k = 0;
        for (size_t bi = 0; bi < s->n; ++bi) {
            bams3_batch_columns c;
            if (s->kept[bi] == 0)
                continue;
            int rc = bams3_batch_get_columns(s->b[bi], &c);
            if (rc != BAMS3_OK)
                fail(rc, NULL);
            for (size_t i = 0; i < c.n; ++i) {
                if (s->keep[bi] && !s->keep[bi][i])
                    continue;
                if (sw)
                    sw[k] = (int) (c.seq_offsets[i + 1] - c.seq_offsets[i]);
                if (qw)
                    qw[k] = (int) qual_width(c.qual + c.qual_offsets[i],
                                             c.qual_offsets[i + 1] - c.qual_offsets[i],
                                             revcomp && (c.flag[i] & 0x10));
                ++k;
            }
        }
    }
    XVectorList_holder sh, qh;
    memset(&sh, 0, sizeof sh);
    memset(&qh, 0, sizeof qh);
    if (sw) {
        SET_VECTOR_ELT(a.store, F_SEQ, alloc_XRawList("DNAStringSet", "DNAString",
                                                      VECTOR_ELT(a.store, F_SEQ_WIDTH)));
        sh = hold_XVectorList(VECTOR_ELT(a.store, F_SEQ));
    }
    if (qw) {
        SET_VECTOR_ELT(a.store, F_QUAL, alloc_XRawList("BStringSet", "BString",
                                                       VECTOR_ELT(a.store, F_QUAL_WIDTH)));
        qh = hold_XVectorList(VECTOR_ELT(a.store, F_QUAL));
    }

    /* 3. Copy each batch out, then free it. */
    SEXP out[F_N_SLOTS];
    for (int i = 0; i < F_N_SLOTS; ++i)
        out[i] = VECTOR_ELT(a.store, i);
    int *iv[F_N_FIELDS];
    for (int i = 0; i < F_N_FIELDS; ++i)
        iv[i] = (a.want[i] && TYPEOF(out[i]) == INTSXP) ? INTEGER(out[i]) : NULL;
    R_xlen_t k = 0;
    for (size_t bi = 0; bi < s->n; ++bi) {
        bams3_batch_columns c;
        if (s->kept[bi] > 0) {
            int rc = bams3_batch_get_columns(s->b[bi], &c);
            if (rc != BAMS3_OK)
                fail(rc, NULL);
            for (size_t i = 0; i < c.n; ++i) {
                if (s->keep[bi] && !s->keep[bi][i])
                    continue;
                uint16_t flag = c.flag[i];
                int unmapped = (flag & 0x4) != 0, mate_unmapped = (flag & 0x8) != 0;
                int placed = c.ref_id[i] >= 0, mate_placed = c.next_ref_id[i] >= 0;
                if (a.want[F_QNAME])
                    SET_STRING_ELT(out[F_QNAME], k,
                                   Rf_mkCharLen(c.name + c.name_offsets[i],
                                                (int) (c.name_offsets[i + 1] - c.name_offsets[i])));
                if (iv[F_FLAG]) iv[F_FLAG][k] = flag;
                if (iv[F_RNAME]) iv[F_RNAME][k] = placed ? c.ref_id[i] + 1 : NA_INTEGER;
                if (iv[F_STRAND]) iv[F_STRAND][k] = unmapped ? NA_INTEGER : (flag & 0x10) ? 2 : 1;
                if (iv[F_POS]) iv[F_POS][k] = (!placed || unmapped) ? NA_INTEGER : c.pos[i] + 1;
                if (iv[F_QWIDTH]) iv[F_QWIDTH][k] = unmapped ? NA_INTEGER : c.query_len[i];
                if (iv[F_MAPQ]) iv[F_MAPQ][k] = unmapped ? NA_INTEGER : c.mapq[i];
                if (a.want[F_CIGAR])
                    SET_STRING_ELT(out[F_CIGAR], k,
                                   (!placed || unmapped)
                                       ? NA_STRING
                                       : Rf_mkCharLen(c.cigar + c.cigar_offsets[i],
                                                      (int) (c.cigar_offsets[i + 1] - c.cigar_offsets[i])));
                if (iv[F_MRNM]) iv[F_MRNM][k] = mate_placed ? c.next_ref_id[i] + 1 : NA_INTEGER;
                if (iv[F_MPOS])
                    iv[F_MPOS][k] = (!mate_placed || mate_unmapped) ? NA_INTEGER : c.next_pos[i] + 1;
                if (iv[F_ISIZE])
                    iv[F_ISIZE][k] = (unmapped || mate_unmapped) ? NA_INTEGER : c.tlen[i];
                int rc_this = revcomp && (flag & 0x10);
                if (sw) {
                    Chars_holder d = get_elt_from_XRawList_holder(&sh, (int) k);
                    char *dst = (char *) d.ptr;
                    size_t len = (size_t) d.length;
                    const char *src = c.seq + c.seq_offsets[i];
                    if (rc_this) {
                        for (size_t j = 0; j < len; ++j) {
                            char b = src[len - 1 - j];
                            dst[j] = (char) lkup[(unsigned char) complement(b == '=' ? '-' : b)];
                        }
                    } else {
                        for (size_t j = 0; j < len; ++j) {
                            char b = src[j];
                            dst[j] = (char) lkup[(unsigned char) (b == '=' ? '-' : b)];
                        }
                    }
                }
                if (qw) {
                    Chars_holder d = get_elt_from_XRawList_holder(&qh, (int) k);
                    char *dst = (char *) d.ptr;
                    size_t len = (size_t) d.length;
                    const uint8_t *src = c.qual + c.qual_offsets[i];
                    size_t slen = c.qual_offsets[i + 1] - c.qual_offsets[i];
                    /* Phred+33 in a char, as Rsamtools (a missing 0xFF wraps to a space). */
                    if (rc_this)
                        for (size_t j = 0; j < len; ++j)
                            dst[j] = (char) (unsigned char) (src[slen - 1 - j] + 33);
                    else
                        for (size_t j = 0; j < len; ++j)
                            dst[j] = (char) (unsigned char) (src[j] + 33);
                }
                if (a.want[F_TAG])
                    parse_tags(&a, k, c.aux + c.aux_offsets[i], c.aux + c.aux_offsets[i + 1]);
                ++k;
            }
        }
        bams3_batch_free(s->b[bi]);
        s->b[bi] = NULL;
        free(s->keep[bi]);
        s->keep[bi] = NULL;
    }
    batches_finalize(sxp);

    SEXP ans = PROTECT(Rf_allocVector(VECSXP, F_N_FIELDS));
    for (int i = 0; i < F_N_FIELDS; ++i)
        if (a.want[i])
            SET_VECTOR_ELT(ans, i, VECTOR_ELT(a.store, i));
    UNPROTECT(3);
    return ans;
}

/* ---- registration ----------------------------------------------------------------------- */

static const R_CallMethodDef call_methods[] = {
    {"C_last_code", (DL_FUNC) &C_last_code, 0},
    {"C_strerror", (DL_FUNC) &C_strerror, 1},
    {"C_version", (DL_FUNC) &C_version, 0},
    {"C_open", (DL_FUNC) &C_open, 1},
    {"C_close", (DL_FUNC) &C_close, 1},
    {"C_is_open", (DL_FUNC) &C_is_open, 1},
    {"C_header_text", (DL_FUNC) &C_header_text, 1},
    {"C_references", (DL_FUNC) &C_references, 1},
    {"C_stats_json", (DL_FUNC) &C_stats_json, 1},
    {"C_count", (DL_FUNC) &C_count, 6},
    {"C_query", (DL_FUNC) &C_query, 4},
    {"C_query_free", (DL_FUNC) &C_query_free, 1},
    {"C_query_done", (DL_FUNC) &C_query_done, 1},
    {"C_scan", (DL_FUNC) &C_scan, 7},
    {NULL, NULL, 0}};

void R_init_bams3(DllInfo *dll)
{
    R_registerRoutines(dll, NULL, call_methods, NULL, NULL);
    R_useDynamicSymbols(dll, FALSE);
    R_forceSymbols(dll, TRUE);
}
