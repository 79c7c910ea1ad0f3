/*
 * test_api.c: every function of bams3.h, on success and on misuse, with the documented codes.
 *
 * Usage: test_api WORKDIR DATASET
 *   WORKDIR  an empty scratch directory (datasets are written under it)
 *   DATASET  a dataset converted by `bams3 convert` (records read back and re-written with
 *            bams3_writer_add_bam)
 *
 * Prints one line per failed check and, last, "N passed, N failed".
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bams3.h"

static int passed, failed;

/* The last error cannot be cleared, so EXPECT_ERR first provokes a known one ("opts is NULL"):
 * the call under test then proves it set its own, non-empty message. */
static void reset_last_error(void) { bams3_writer_options_default(NULL); }

static int fresh_error(const char *call) {
    const char *m = bams3_last_error();
    return m[0] != '\0' && (strcmp(m, "opts is NULL") != 0 || strstr(call, "options_default"));
}

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (cond) {                                                                        \
            passed++;                                                                      \
        } else {                                                                           \
            failed++;                                                                      \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__,        \
                    __LINE__, #cond, bams3_last_error());                                  \
        }                                                                                  \
    } while (0)

/* A call that must fail with `code` and leave a non-empty message. */
#define EXPECT_ERR(call, code)                                                             \
    do {                                                                                   \
        reset_last_error();                                                                \
        int rc_ = (call);                                                                  \
        if (rc_ == (code) && fresh_error(#call)) {                                         \
            passed++;                                                                      \
        } else {                                                                           \
            failed++;                                                                      \
            fprintf(stderr, "%s:%d: %s returned %d (%s), expected %d; last error: '%s'\n", \
                    __FILE__, __LINE__, #call, rc_, bams3_strerror(rc_), (code),           \
                    bams3_last_error());                                                   \
        }                                                                                  \
    } while (0)

#define EXPECT_OK(call)                                                                    \
    do {                                                                                   \
        int rc_ = (call);                                                                  \
        if (rc_ == BAMS3_OK) {                                                             \
            passed++;                                                                      \
        } else {                                                                           \
            failed++;                                                                      \
            fprintf(stderr, "%s:%d: %s failed: %d %s\n", __FILE__, __LINE__, #call, rc_,   \
                    bams3_last_error());                                                   \
        }                                                                                  \
    } while (0)


static char workdir[4096];

static const char *path(const char *name) {
    static char buf[8][4200];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", workdir, name);
    return buf[i];
}

static const char HEADER[] = "@HD\tVN:1.6\tSO:coordinate\n"
                             "@SQ\tSN:chr1\tLN:100000\n"
                             "@SQ\tSN:chr2\tLN:50000\n"
                             "@RG\tID:rg1\tSM:s1\n";

/* Sorted by position, as `bams3 query` prints them. */
static const char *RECORDS[] = {
    "r1\t99\tchr1\t100\t60\t10M\t=\t200\t110\tACGTACGTAC\tIIIIIIIIII\tRG:Z:rg1\tNM:i:0",
    "r2\t0\tchr1\t150\t20\t4M1I5M\t*\t0\t0\tACGTACGTAC\t*\tRG:Z:rg1",
    "r1\t147\tchr1\t200\t60\t10M\t=\t100\t-110\tTTTTTGGGGG\tABCDEFGHIJ\tRG:Z:rg1\tXA:f:1.5",
    "r3\t16\tchr2\t5\t0\t3S7M\t*\t0\t0\tNNNACGTACG\t##########",
    "u1\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\tFFFF",
};
#define N_RECORDS (sizeof RECORDS / sizeof RECORDS[0])

static void test_version(void) {
    CHECK(strcmp(bams3_version(), BAMS3_VERSION_STRING) == 0);
    CHECK(bams3_abi_version() == BAMS3_ABI_VERSION);
    CHECK((bams3_abi_version() >> 16) == BAMS3_ABI_VERSION_MAJOR);
    CHECK(bams3_last_error() != NULL);
    int codes[] = {BAMS3_OK,           BAMS3_ERR_NULL,    BAMS3_ERR_INVALID, BAMS3_ERR_UTF8,
                   BAMS3_ERR_NOT_FOUND, BAMS3_ERR_EXISTS, BAMS3_ERR_INCOMPLETE,
                   BAMS3_ERR_CORRUPT,   BAMS3_ERR_IO,      BAMS3_ERR_REGION, BAMS3_ERR_MISUSE,
                   BAMS3_ERR_PANIC,     BAMS3_ERR_CANCELLED, BAMS3_ERR_INTERNAL};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(bams3_strerror(codes[i]) != NULL && bams3_strerror(codes[i])[0] != '\0');
        for (size_t j = 0; j < i; j++)
            CHECK(codes[i] != codes[j] && strcmp(bams3_strerror(codes[i]), bams3_strerror(codes[j])) != 0);
    }
    CHECK(strcmp(bams3_strerror(12345), "unknown error") == 0);
}

static void test_writer_misuse(void) {
    bams3_writer_options o;
    bams3_writer *w = (bams3_writer *)0x1; /* sentinel: must stay untouched on failure */

    EXPECT_ERR(bams3_writer_options_default(NULL), BAMS3_ERR_NULL);
    EXPECT_OK(bams3_writer_options_default(&o));
    CHECK(o.struct_size == sizeof o && o.level == 3 && o.threads == 2 && o.chunk_size == 1048576);

    EXPECT_ERR(bams3_writer_open(NULL, HEADER, NULL, &w), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_writer_open(path("x"), NULL, NULL, &w), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_writer_open(path("x"), HEADER, NULL, NULL), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_writer_open("bad\xff/utf8", HEADER, NULL, &w), BAMS3_ERR_UTF8);
    EXPECT_ERR(bams3_writer_open(path("x"), "@SQ\tSN:a\tLN:1\n\xc3", NULL, &w), BAMS3_ERR_UTF8);

    bams3_writer_options bad = o;
    bad.level = 99;
    EXPECT_ERR(bams3_writer_open(path("x"), HEADER, &bad, &w), BAMS3_ERR_INVALID);
    bad = o;
    bad.chunk_size = 1000;
    EXPECT_ERR(bams3_writer_open(path("x"), HEADER, &bad, &w), BAMS3_ERR_INVALID);
    bad = o;
    bad.threads = 0;
    EXPECT_ERR(bams3_writer_open(path("x"), HEADER, &bad, &w), BAMS3_ERR_INVALID);
    bad = o;
    bad.struct_size = 0; /* not initialised with bams3_writer_options_default */
    EXPECT_ERR(bams3_writer_open(path("x"), HEADER, &bad, &w), BAMS3_ERR_INVALID);
    bad = o;
    bad.memory_budget = 1024;
    EXPECT_ERR(bams3_writer_open(path("x"), HEADER, &bad, &w), BAMS3_ERR_INVALID);
    CHECK(w == (bams3_writer *)0x1);

    /* A location that already holds something is refused. */
    mkdir(path("occupied"), 0755);
    FILE *f = fopen(path("occupied/file"), "w");
    CHECK(f != NULL);
    if (f)
        fclose(f);
    EXPECT_ERR(bams3_writer_open(path("occupied"), HEADER, NULL, &w), BAMS3_ERR_EXISTS);
    CHECK(w == (bams3_writer *)0x1);

    /* Handles are NULL-checked everywhere. */
    EXPECT_ERR(bams3_writer_add_sam(NULL, RECORDS[0], strlen(RECORDS[0])), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_writer_add_bam(NULL, (const uint8_t *)"x", 1), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_writer_finish(NULL), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_writer_abort(NULL), BAMS3_ERR_NULL);
    bams3_writer_free(NULL);
}

/* Writes RECORDS as SAM; returns the committed dataset's path. */
static const char *test_writer_sam(void) {
    const char *loc = path("sam");
    bams3_writer *w = NULL;
    bams3_writer_options o;
    EXPECT_OK(bams3_writer_options_default(&o));
    o.threads = 1;
    o.memory_budget = 128u << 20;
    EXPECT_OK(bams3_writer_open(loc, HEADER, &o, &w));
    CHECK(w != NULL);
    if (!w)
        return loc;

    /* Bad records are refused one by one; the writer stays usable. */
    EXPECT_ERR(bams3_writer_add_sam(w, NULL, 3), BAMS3_ERR_NULL);
    const char bad_utf8[] = "r9\t0\tchr1\t1\t60\t1M\t*\t0\t0\tA\t*\tCO:Z:\xff\xfe";
    EXPECT_ERR(bams3_writer_add_sam(w, bad_utf8, strlen(bad_utf8)), BAMS3_ERR_UTF8);
    const char *malformed = "r9\tnot-a-flag\tchr1\t1\t60\t1M\t*\t0\t0\tA\t*";
    EXPECT_ERR(bams3_writer_add_sam(w, malformed, strlen(malformed)), BAMS3_ERR_CORRUPT);
    const char *unknown_ref = "r9\t0\tchrZ\t1\t60\t1M\t*\t0\t0\tA\t*";
    EXPECT_ERR(bams3_writer_add_sam(w, unknown_ref, strlen(unknown_ref)), BAMS3_ERR_CORRUPT);
    EXPECT_ERR(bams3_writer_add_sam(w, "", 0), BAMS3_ERR_CORRUPT);
    const uint8_t short_bam[8] = {0};
    EXPECT_ERR(bams3_writer_add_bam(w, short_bam, sizeof short_bam), BAMS3_ERR_CORRUPT);
    EXPECT_ERR(bams3_writer_add_bam(w, NULL, 40), BAMS3_ERR_NULL);

    /* Any order; with or without a trailing newline; the length, not a NUL, ends the line. */
    for (size_t i = N_RECORDS; i-- > 0;) {
        char line[512];
        size_t n = strlen(RECORDS[i]);
        memcpy(line, RECORDS[i], n);
        if (i % 2) {
            line[n++] = '\n';
        }
        line[n] = 'X'; /* not part of the line */
        EXPECT_OK(bams3_writer_add_sam(w, line, n));
    }
    EXPECT_OK(bams3_writer_finish(w));

    /* Use after finish. */
    reset_last_error();
    EXPECT_ERR(bams3_writer_add_sam(w, RECORDS[0], strlen(RECORDS[0])), BAMS3_ERR_MISUSE);
    EXPECT_ERR(bams3_writer_finish(w), BAMS3_ERR_MISUSE);
    EXPECT_ERR(bams3_writer_abort(w), BAMS3_ERR_MISUSE);
    bams3_writer_free(w);
    return loc;
}

static void test_writer_abort(void) {
    bams3_writer *w = NULL;
    bams3_reader *r = (bams3_reader *)0x1;
    int rc;

    EXPECT_OK(bams3_writer_open(path("aborted"), HEADER, NULL, &w));
    for (size_t i = 0; i < N_RECORDS; i++)
        EXPECT_OK(bams3_writer_add_sam(w, RECORDS[i], strlen(RECORDS[i])));
    EXPECT_OK(bams3_writer_abort(w));
    reset_last_error();
    EXPECT_ERR(bams3_writer_add_sam(w, RECORDS[0], strlen(RECORDS[0])), BAMS3_ERR_MISUSE);
    EXPECT_ERR(bams3_writer_finish(w), BAMS3_ERR_MISUSE);
    EXPECT_ERR(bams3_writer_abort(w), BAMS3_ERR_MISUSE);
    bams3_writer_free(w);
    rc = bams3_reader_open(path("aborted"), &r);
    CHECK(rc == BAMS3_ERR_NOT_FOUND || rc == BAMS3_ERR_INCOMPLETE);
    CHECK(r == (bams3_reader *)0x1);

    /* Freed without finish: aborted, never committed. */
    w = NULL;
    EXPECT_OK(bams3_writer_open(path("dropped"), HEADER, NULL, &w));
    for (size_t i = 0; i < N_RECORDS; i++)
        EXPECT_OK(bams3_writer_add_sam(w, RECORDS[i], strlen(RECORDS[i])));
    bams3_writer_free(w);
    rc = bams3_reader_open(path("dropped"), &r);
    CHECK(rc == BAMS3_ERR_NOT_FOUND || rc == BAMS3_ERR_INCOMPLETE);
}

static int count(const bams3_reader *r, const char *region, const bams3_filter *f) {
    bams3_query *q = NULL;
    const bams3_record *rec;
    int n = 0, rc;
    if (bams3_reader_query(r, region, f, &q) != BAMS3_OK)
        return -1;
    while ((rc = bams3_query_next(q, &rec)) == 1)
        n++;
    bams3_query_free(q);
    return rc == 0 ? n : -1;
}

static void test_reader(const char *loc) {
    bams3_reader *r = NULL;
    const char *s = NULL;
    size_t n = 0;
    int64_t len = 0;

    /* Opening. */
    bams3_reader *sentinel = (bams3_reader *)0x1;
    EXPECT_ERR(bams3_reader_open(NULL, &sentinel), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_reader_open(loc, NULL), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_reader_open(path("no-such-dataset"), &sentinel), BAMS3_ERR_NOT_FOUND);
    EXPECT_ERR(bams3_reader_open(path("occupied"), &sentinel), BAMS3_ERR_INCOMPLETE);
    EXPECT_ERR(bams3_reader_open("\xff", &sentinel), BAMS3_ERR_UTF8);
    CHECK(sentinel == (bams3_reader *)0x1);
    EXPECT_OK(bams3_reader_open(loc, &r));
    if (!r)
        return;

    /* Header and references. */
    EXPECT_OK(bams3_reader_header_text(r, &s));
    CHECK(s && strcmp(s, HEADER) == 0);
    EXPECT_ERR(bams3_reader_header_text(NULL, &s), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_reader_header_text(r, NULL), BAMS3_ERR_NULL);
    EXPECT_OK(bams3_reader_n_references(r, &n));
    CHECK(n == 2);
    EXPECT_ERR(bams3_reader_n_references(NULL, &n), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_reader_n_references(r, NULL), BAMS3_ERR_NULL);
    EXPECT_OK(bams3_reader_reference(r, 1, &s, &len));
    CHECK(strcmp(s, "chr2") == 0 && len == 50000);
    EXPECT_OK(bams3_reader_reference(r, 0, NULL, &len));
    CHECK(len == 100000);
    EXPECT_OK(bams3_reader_reference(r, 0, &s, NULL));
    CHECK(strcmp(s, "chr1") == 0);
    s = "untouched";
    EXPECT_ERR(bams3_reader_reference(r, 2, &s, &len), BAMS3_ERR_INVALID);
    CHECK(strcmp(s, "untouched") == 0);
    EXPECT_ERR(bams3_reader_reference(NULL, 0, &s, &len), BAMS3_ERR_NULL);

    /* Every record, back as the same SAM lines, and every accessor. */
    bams3_query *q = NULL;
    const bams3_record *rec = NULL;
    EXPECT_OK(bams3_reader_query(r, NULL, NULL, &q));
    size_t i = 0;
    int rc;
    while ((rc = bams3_query_next(q, &rec)) == 1) {
        CHECK(i < N_RECORDS);
        if (i >= N_RECORDS)
            break;
        EXPECT_OK(bams3_record_sam_line(rec, &s));
        CHECK(strcmp(s, RECORDS[i]) == 0);
        if (i == 0) {
            EXPECT_OK(bams3_record_name(rec, &s));
            CHECK(strcmp(s, "r1") == 0);
            CHECK(bams3_record_flag(rec) == 99);
            CHECK(bams3_record_ref_id(rec) == 0);
            EXPECT_OK(bams3_record_ref_name(rec, &s));
            CHECK(strcmp(s, "chr1") == 0);
            CHECK(bams3_record_pos(rec) == 99);
            CHECK(bams3_record_end(rec) == 109);
            CHECK(bams3_record_mapq(rec) == 60);
            EXPECT_OK(bams3_record_cigar_string(rec, &s));
            CHECK(strcmp(s, "10M") == 0);
            CHECK(bams3_record_next_ref_id(rec) == 0);
            CHECK(bams3_record_next_pos(rec) == 199);
            CHECK(bams3_record_tlen(rec) == 110);
            CHECK(bams3_record_seq_len(rec) == 10);
            EXPECT_OK(bams3_record_sequence(rec, &s));
            CHECK(strcmp(s, "ACGTACGTAC") == 0);
            EXPECT_OK(bams3_record_qualities(rec, &s));
            CHECK(strcmp(s, "IIIIIIIIII") == 0);
            EXPECT_OK(bams3_record_tags_sam(rec, &s));
            CHECK(strcmp(s, "RG:Z:rg1\tNM:i:0") == 0);
            const uint8_t *data = NULL;
            size_t dlen = 0;
            EXPECT_OK(bams3_record_bam(rec, &data, &dlen));
            CHECK(data && dlen > 32 && data[8] == 3 /* l_read_name "r1\0" */);
            EXPECT_ERR(bams3_record_bam(rec, NULL, &dlen), BAMS3_ERR_NULL);
            EXPECT_ERR(bams3_record_bam(rec, &data, NULL), BAMS3_ERR_NULL);
            EXPECT_ERR(bams3_record_bam(NULL, &data, &dlen), BAMS3_ERR_NULL);
            /* Misuse of accessors. */
            EXPECT_ERR(bams3_record_name(rec, NULL), BAMS3_ERR_NULL);
            EXPECT_ERR(bams3_record_name(NULL, &s), BAMS3_ERR_NULL);
            EXPECT_ERR(bams3_record_sam_line(NULL, &s), BAMS3_ERR_NULL);
            EXPECT_ERR(bams3_record_cigar_string(NULL, &s), BAMS3_ERR_NULL);
            reset_last_error();
            CHECK(bams3_record_flag(NULL) == 0 && strstr(bams3_last_error(), "record"));
            CHECK(bams3_record_pos(NULL) == -1 && bams3_record_ref_id(NULL) == -1);
            CHECK(bams3_record_mapq(NULL) == 255 && bams3_record_tlen(NULL) == 0);
            CHECK(bams3_record_next_pos(NULL) == -1 && bams3_record_next_ref_id(NULL) == -1);
            CHECK(bams3_record_end(NULL) == -1 && bams3_record_seq_len(NULL) == 0);
        }
        if (i == 1) {
            EXPECT_OK(bams3_record_qualities(rec, &s));
            CHECK(strcmp(s, "*") == 0);
            EXPECT_OK(bams3_record_cigar_string(rec, &s));
            CHECK(strcmp(s, "4M1I5M") == 0);
        }
        if (i == 4) {
            CHECK(bams3_record_ref_id(rec) == -1 && bams3_record_pos(rec) == -1);
            EXPECT_OK(bams3_record_ref_name(rec, &s));
            CHECK(strcmp(s, "*") == 0);
            EXPECT_OK(bams3_record_tags_sam(rec, &s));
            CHECK(strcmp(s, "") == 0);
        }
        i++;
    }
    CHECK(rc == 0 && i == N_RECORDS);
    rec = (const bams3_record *)0x1;
    CHECK(bams3_query_next(q, &rec) == 0 && rec == (const bams3_record *)0x1); /* end is sticky */
    EXPECT_ERR(bams3_query_next(NULL, &rec), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_query_next(q, NULL), BAMS3_ERR_NULL);
    bams3_query_free(q);
    bams3_query_free(NULL);

    /* Regions, as `bams3 query` / samtools read them. */
    CHECK(count(r, "chr1", NULL) == 3);
    CHECK(count(r, "chr1:105", NULL) == 3);
    CHECK(count(r, "chr1:110-150", NULL) == 1); /* r1 (100-109) ends before; r2 starts at 150 */
    CHECK(count(r, "chr1:110-149", NULL) == 0);
    CHECK(count(r, "chr1:1,000-2,000", NULL) == 0);
    CHECK(count(r, "{chr2}:1-10", NULL) == 1);
    CHECK(count(r, "*", NULL) == 1);
    bams3_filter f = {30, 0, 0};
    CHECK(count(r, NULL, &f) == 2);
    f.min_mapq = 0;
    f.require_flags = 0x10;
    CHECK(count(r, NULL, &f) == 2);
    f.require_flags = 0;
    f.exclude_flags = 0x4;
    CHECK(count(r, NULL, &f) == 4);

    q = (bams3_query *)0x1;
    EXPECT_ERR(bams3_reader_query(r, "chrZ:1-10", NULL, &q), BAMS3_ERR_REGION);
    EXPECT_ERR(bams3_reader_query(r, "chr1:abc", NULL, &q), BAMS3_ERR_REGION);
    EXPECT_ERR(bams3_reader_query(r, "chr1:20-10", NULL, &q), BAMS3_ERR_REGION);
    EXPECT_ERR(bams3_reader_query(r, "{chr1", NULL, &q), BAMS3_ERR_REGION);
    EXPECT_ERR(bams3_reader_query(r, "chr1:\xff", NULL, &q), BAMS3_ERR_UTF8);
    EXPECT_ERR(bams3_reader_query(NULL, "chr1", NULL, &q), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_reader_query(r, "chr1", NULL, NULL), BAMS3_ERR_NULL);
    CHECK(q == (bams3_query *)0x1);

    /* Stats. */
    char *json = NULL;
    EXPECT_OK(bams3_reader_stats_json(r, &json));
    CHECK(json && strstr(json, "\"total_reads\": 5") && strstr(json, "\"format\": \"bams3\""));
    bams3_string_free(json);
    bams3_string_free(NULL);
    EXPECT_ERR(bams3_reader_stats_json(NULL, &json), BAMS3_ERR_NULL);
    EXPECT_ERR(bams3_reader_stats_json(r, NULL), BAMS3_ERR_NULL);

    /* A query may outlive its reader. */
    q = NULL;
    EXPECT_OK(bams3_reader_query(r, "chr1", NULL, &q));
    bams3_reader_free(r);
    bams3_reader_free(NULL);
    n = 0;
    while (bams3_query_next(q, &rec) == 1)
        n++;
    CHECK(n == 3);
    bams3_query_free(q);
}

/* Reads every record of a `bams3 convert`ed dataset, writes them back with add_bam, and checks
 * the copy gives the same SAM lines. */
static void test_add_bam_roundtrip(const char *src) {
    bams3_reader *r = NULL, *r2 = NULL;
    bams3_writer *w = NULL;
    bams3_query *q = NULL, *q2 = NULL;
    const bams3_record *rec, *rec2;
    const char *header, *s, *s2;
    size_t n = 0, m = 0;

    EXPECT_OK(bams3_reader_open(src, &r));
    if (!r)
        return;
    EXPECT_OK(bams3_reader_header_text(r, &header));
    EXPECT_OK(bams3_writer_open(path("bam-copy"), header, NULL, &w));
    EXPECT_OK(bams3_reader_query(r, NULL, NULL, &q));
    while (bams3_query_next(q, &rec) == 1) {
        const uint8_t *data;
        size_t len;
        EXPECT_OK(bams3_record_bam(rec, &data, &len));
        EXPECT_OK(bams3_writer_add_bam(w, data, len));
        n++;
    }
    bams3_query_free(q);
    EXPECT_OK(bams3_writer_finish(w));
    bams3_writer_free(w);
    CHECK(n > 0);

    EXPECT_OK(bams3_reader_open(path("bam-copy"), &r2));
    EXPECT_OK(bams3_reader_query(r, NULL, NULL, &q));
    EXPECT_OK(bams3_reader_query(r2, NULL, NULL, &q2));
    int same = 1;
    while (bams3_query_next(q, &rec) == 1) {
        if (bams3_query_next(q2, &rec2) != 1) {
            same = 0;
            break;
        }
        bams3_record_sam_line(rec, &s);
        bams3_record_sam_line(rec2, &s2);
        same &= strcmp(s, s2) == 0;
        m++;
    }
    CHECK(same && m == n && bams3_query_next(q2, &rec2) == 0);
    bams3_query_free(q);
    bams3_query_free(q2);
    bams3_reader_free(r);
    bams3_reader_free(r2);
}

/* Four threads add records at once, in no order; then one finishes and late adds are refused. */
struct adder {
    bams3_writer *w;
    int id, errors;
};

static void *add_many(void *arg) {
    struct adder *a = arg;
    for (int i = 0; i < 200; i++) {
        char line[256];
        int n = snprintf(line, sizeof line, "t%d_%d\t0\tchr%d\t%d\t60\t4M\t*\t0\t0\tACGT\tIIII",
                         a->id, i, 1 + (i % 2), 1 + (i * 7919) % 40000);
        if (bams3_writer_add_sam(a->w, line, (size_t)n) != BAMS3_OK)
            a->errors++;
    }
    return NULL;
}

static void test_writer_threads(void) {
    bams3_writer *w = NULL;
    EXPECT_OK(bams3_writer_open(path("threads"), HEADER, NULL, &w));
    if (!w)
        return;
    pthread_t t[4];
    struct adder a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct adder){w, i, 0};
        pthread_create(&t[i], NULL, add_many, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(a[i].errors == 0);
    }
    EXPECT_OK(bams3_writer_finish(w));
    struct adder late = {w, 9, 0};
    pthread_t lt;
    pthread_create(&lt, NULL, add_many, &late);
    pthread_join(lt, NULL);
    CHECK(late.errors == 200); /* every add after finish: BAMS3_ERR_MISUSE */
    bams3_writer_free(w);

    bams3_reader *r = NULL;
    EXPECT_OK(bams3_reader_open(path("threads"), &r));
    CHECK(count(r, NULL, NULL) == 800);
    CHECK(count(r, "chr1", NULL) == 400 && count(r, "chr2", NULL) == 400);
    /* Positions come out sorted whatever the arrival order. */
    bams3_query *q = NULL;
    const bams3_record *rec;
    int64_t last = -1;
    int sorted = 1;
    EXPECT_OK(bams3_reader_query(r, "chr1", NULL, &q));
    while (bams3_query_next(q, &rec) == 1) {
        sorted &= bams3_record_pos(rec) >= last;
        last = bams3_record_pos(rec);
    }
    CHECK(sorted);
    bams3_query_free(q);
    bams3_reader_free(r);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s WORKDIR DATASET\n", argv[0]);
        return 2;
    }
    snprintf(workdir, sizeof workdir, "%s", argv[1]);
    test_version();
    test_writer_misuse();
    const char *loc = test_writer_sam();
    test_writer_abort();
    test_reader(loc);
    test_writer_threads();
    test_add_bam_roundtrip(argv[2]);
    printf("test_api: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
