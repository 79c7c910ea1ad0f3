/*
 * test_batch DATASET: the batch (columnar) reader, bams3_query_next_batch, against the
 * per-record accessors of bams3_query_next on the same query, plus misuse.
 * Run under valgrind by bindings/test.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bams3.h"

static int passed, failed;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (cond) {                                                                        \
            passed++;                                                                      \
        } else {                                                                           \
            failed++;                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
        }                                                                                  \
    } while (0)

/* Value i of a variable-length column equals the NUL-terminated `want`. */
static int same_text(const char *data, const size_t *off, size_t i, const char *want)
{
    size_t len = off[i + 1] - off[i];
    return len == strlen(want) && memcmp(data + off[i], want, len) == 0;
}

/* Every record of `region` through batches of `capacity` equals the record accessors; returns
 * the number of records. */
static long compare(const bams3_reader *r, const char *region, size_t capacity)
{
    bams3_query *q1 = NULL, *q2 = NULL;
    bams3_batch *b = NULL;
    if (bams3_reader_query(r, region, NULL, &q1) || bams3_reader_query(r, region, NULL, &q2) ||
        bams3_batch_new(BAMS3_COLUMN_ALL, capacity, &b)) {
        fprintf(stderr, "setup: %s\n", bams3_last_error());
        failed++;
        return -1;
    }
    long total = 0, mismatches = 0;
    int n;
    while ((n = bams3_query_next_batch(q1, b)) > 0) {
        CHECK((size_t) n <= capacity, "batch of %d > capacity %zu", n, capacity);
        bams3_batch_columns c;
        CHECK(bams3_batch_get_columns(b, &c) == BAMS3_OK, "%s", bams3_last_error());
        CHECK(c.n == (size_t) n, "n %zu != %d", c.n, n);
        for (int i = 0; i < n; ++i) {
            const bams3_record *rec = NULL;
            if (bams3_query_next(q2, &rec) != 1) {
                mismatches++;
                break;
            }
            const char *name, *cigar, *seq, *qual;
            bams3_record_name(rec, &name);
            bams3_record_cigar_string(rec, &cigar);
            bams3_record_sequence(rec, &seq);
            bams3_record_qualities(rec, &qual);
            int ok = c.flag[i] == bams3_record_flag(rec) &&
                     c.ref_id[i] == bams3_record_ref_id(rec) &&
                     c.pos[i] == bams3_record_pos(rec) && c.end[i] == bams3_record_end(rec) &&
                     c.mapq[i] == bams3_record_mapq(rec) &&
                     c.next_ref_id[i] == bams3_record_next_ref_id(rec) &&
                     c.next_pos[i] == bams3_record_next_pos(rec) &&
                     c.tlen[i] == bams3_record_tlen(rec) &&
                     (size_t) c.seq_len[i] == bams3_record_seq_len(rec) &&
                     same_text(c.name, c.name_offsets, i, name) &&
                     same_text(c.cigar, c.cigar_offsets, i, strcmp(cigar, "*") ? cigar : "") &&
                     same_text(c.seq, c.seq_offsets, i, strcmp(seq, "*") ? seq : "");
            /* Qualities: raw Phred, SAM text is +33 (or "*" when missing). */
            size_t ql = c.qual_offsets[i + 1] - c.qual_offsets[i];
            ok = ok && ql == (size_t) c.seq_len[i];
            if (strcmp(qual, "*") != 0)
                for (size_t j = 0; ok && j < ql; ++j)
                    ok = c.qual[c.qual_offsets[i] + j] + 33 == (unsigned char) qual[j];
            /* Tags: the BAM bytes after the fixed part, name, CIGAR, bases and qualities. */
            const uint8_t *bam;
            size_t bam_len;
            bams3_record_bam(rec, &bam, &bam_len);
            size_t l_name = bam[8], n_cigar = (size_t) bam[12] | ((size_t) bam[13] << 8);
            size_t l_seq = (size_t) c.seq_len[i];
            size_t aux_at = 32 + l_name + 4 * n_cigar + (l_seq + 1) / 2 + l_seq;
            size_t al = c.aux_offsets[i + 1] - c.aux_offsets[i];
            ok = ok && al == bam_len - aux_at &&
                 memcmp(c.aux + c.aux_offsets[i], bam + aux_at, al) == 0;
            /* Query length from the CIGAR text. */
            long qlen = 0, num = 0;
            for (const char *p = cigar; *p && strcmp(cigar, "*"); ++p) {
                if (*p >= '0' && *p <= '9') {
                    num = num * 10 + (*p - '0');
                } else {
                    if (strchr("MIS=X", *p))
                        qlen += num;
                    num = 0;
                }
            }
            ok = ok && c.query_len[i] == qlen;
            if (!ok && mismatches++ < 3)
                fprintf(stderr, "record %ld (%s) differs\n", total + i, name);
        }
        total += n;
    }
    CHECK(n == 0, "next_batch ended with %d: %s", n, bams3_last_error());
    const bams3_record *rec = NULL;
    CHECK(bams3_query_next(q2, &rec) == 0, "the record query has more records");
    CHECK(mismatches == 0, "%ld mismatching records in %s", mismatches, region ? region : "all");
    CHECK(bams3_query_next_batch(q1, b) == 0, "a finished query gives 0 again");
    bams3_batch_free(b);
    bams3_query_free(q1);
    bams3_query_free(q2);
    return total;
}

/* A query decoding only `columns` (bams3_reader_query_columns) keeps the records of a full
 * query: the same placement, CIGAR and tags, the columns asked for equal, placeholders for the
 * rest. Returns the number of records. */
static long compare_columns(const bams3_reader *r, const char *region, uint32_t columns)
{
    bams3_query *full = NULL, *part = NULL;
    bams3_batch *bf = NULL, *bp = NULL;
    if (bams3_reader_query(r, region, NULL, &full) ||
        bams3_reader_query_columns(r, region, NULL, columns, &part) ||
        bams3_batch_new(BAMS3_COLUMN_ALL, 4096, &bf) || bams3_batch_new(BAMS3_COLUMN_ALL, 4096, &bp)) {
        fprintf(stderr, "setup: %s\n", bams3_last_error());
        failed++;
        return -1;
    }
    long total = 0, mismatches = 0, placeholders = 0;
    int n, m;
    while ((n = bams3_query_next_batch(full, bf)) > 0) {
        m = bams3_query_next_batch(part, bp);
        CHECK(m == n, "batch of %d records against %d", m, n);
        if (m != n)
            break;
        bams3_batch_columns f, p;
        bams3_batch_get_columns(bf, &f);
        bams3_batch_get_columns(bp, &p);
        for (int i = 0; i < n; ++i) {
            int ok = f.flag[i] == p.flag[i] && f.ref_id[i] == p.ref_id[i] &&
                     f.pos[i] == p.pos[i] && f.end[i] == p.end[i] && f.mapq[i] == p.mapq[i] &&
                     f.seq_len[i] == p.seq_len[i] && f.query_len[i] == p.query_len[i];
            size_t fa = f.cigar_offsets[i], fl = f.cigar_offsets[i + 1] - fa;
            size_t pa = p.cigar_offsets[i], pl = p.cigar_offsets[i + 1] - pa;
            ok = ok && fl == pl && memcmp(f.cigar + fa, p.cigar + pa, fl) == 0;
            fa = f.aux_offsets[i], fl = f.aux_offsets[i + 1] - fa;
            pa = p.aux_offsets[i], pl = p.aux_offsets[i + 1] - pa;
            ok = ok && fl == pl && memcmp(f.aux + fa, p.aux + pa, fl) == 0;
            fa = f.name_offsets[i], fl = f.name_offsets[i + 1] - fa;
            pa = p.name_offsets[i], pl = p.name_offsets[i + 1] - pa;
            if (columns & BAMS3_COLUMN_NAME)
                ok = ok && fl == pl && memcmp(f.name + fa, p.name + pa, fl) == 0;
            else
                ok = ok && pl == 1 && p.name[pa] == '*';
            if (columns & BAMS3_COLUMN_MATE)
                ok = ok && f.next_ref_id[i] == p.next_ref_id[i] &&
                     f.next_pos[i] == p.next_pos[i] && f.tlen[i] == p.tlen[i];
            else
                ok = ok && p.next_ref_id[i] == -1 && p.next_pos[i] == -1 && p.tlen[i] == 0;
            size_t len = (size_t) p.seq_len[i];
            fa = f.seq_offsets[i], pa = p.seq_offsets[i];
            ok = ok && p.seq_offsets[i + 1] - pa == len;
            for (size_t j = 0; ok && j < len; ++j)
                ok = (columns & BAMS3_COLUMN_SEQ) ? p.seq[pa + j] == f.seq[fa + j] : p.seq[pa + j] == '=';
            fa = f.qual_offsets[i], pa = p.qual_offsets[i];
            for (size_t j = 0; ok && j < len; ++j)
                ok = (columns & BAMS3_COLUMN_QUAL) ? p.qual[pa + j] == f.qual[fa + j] : p.qual[pa + j] == 0xff;
            placeholders += !(columns & BAMS3_COLUMN_SEQ) && len > 0;
            if (!ok && mismatches++ < 3)
                fprintf(stderr, "columns 0x%x: record %ld differs\n", columns, total + i);
        }
        total += n;
    }
    CHECK(n == 0 && bams3_query_next_batch(part, bp) == 0, "both queries end together");
    CHECK(mismatches == 0, "%ld records of %s differ with columns 0x%x", mismatches,
          region ? region : "all", columns);
    CHECK((columns & BAMS3_COLUMN_SEQ) || total == 0 || placeholders > 0,
          "placeholders were checked");
    bams3_batch_free(bf);
    bams3_batch_free(bp);
    bams3_query_free(full);
    bams3_query_free(part);
    return total;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_batch DATASET\n");
        return 2;
    }
    bams3_reader *r = NULL;
    if (bams3_reader_open(argv[1], &r) != BAMS3_OK) {
        fprintf(stderr, "open %s: %s\n", argv[1], bams3_last_error());
        return 1;
    }

    /* Whole dataset, in batches of several sizes, and a region. */
    long all = compare(r, NULL, 1000);
    CHECK(all > 0, "no records");
    CHECK(compare(r, NULL, 1) == all, "capacity 1 gives another count");
    CHECK(compare(r, NULL, 1 << 20) == all, "one big batch gives another count");
    const char *ref0 = NULL;
    bams3_reader_reference(r, 0, &ref0, NULL);
    char region[256];
    snprintf(region, sizeof region, "{%s}:1000-30000", ref0);
    CHECK(compare(r, region, 7) >= 0, "region");

    /* Queries decoding only some columns: the same records, placeholders for the rest. */
    CHECK(compare_columns(r, NULL, BAMS3_COLUMN_CIGAR) == all, "placement only");
    CHECK(compare_columns(r, NULL, BAMS3_COLUMN_NAME | BAMS3_COLUMN_MATE) == all, "names, mates");
    CHECK(compare_columns(r, NULL, BAMS3_COLUMN_SEQ | BAMS3_COLUMN_QUAL) == all, "bases, quals");
    CHECK(compare_columns(r, region, 0) >= 0, "region, placement only");
    CHECK(compare_columns(r, NULL, BAMS3_COLUMN_ALL) == all, "every column");

    /* Columns not asked for are NULL; fixed ones are always there. */
    bams3_query *q = NULL;
    bams3_batch *b = NULL;
    CHECK(bams3_reader_query(r, NULL, NULL, &q) == BAMS3_OK, "%s", bams3_last_error());
    CHECK(bams3_batch_new(BAMS3_COLUMN_CIGAR, 100, &b) == BAMS3_OK, "%s", bams3_last_error());
    CHECK(bams3_query_next_batch(q, b) == (all < 100 ? all : 100), "first batch size");
    bams3_batch_columns c;
    memset(&c, 0, sizeof c);
    CHECK(bams3_batch_get_columns(b, &c) == BAMS3_OK, "%s", bams3_last_error());
    CHECK(c.name == NULL && c.name_offsets == NULL && c.seq == NULL && c.qual == NULL &&
              c.aux == NULL, "unrequested columns are NULL");
    CHECK(c.cigar != NULL && c.cigar_offsets != NULL && c.flag != NULL && c.pos != NULL,
          "requested and fixed columns are set");
    /* A record from bams3_query_next and batches may be mixed on one query. */
    const bams3_record *rec = NULL;
    CHECK(bams3_query_next(q, &rec) == (all > 100 ? 1 : 0), "query_next after a batch");

    /* Misuse: NULLs, bad capacity and bits; out-parameters untouched on failure. */
    bams3_batch *untouched = (bams3_batch *) &c;
    CHECK(bams3_batch_new(0, 0, &untouched) == BAMS3_ERR_INVALID, "capacity 0");
    CHECK(untouched == (bams3_batch *) &c, "out written on failure");
    CHECK(bams3_batch_new(0, ((size_t) 1 << 24) + 1, &untouched) == BAMS3_ERR_INVALID,
          "capacity too big");
    CHECK(bams3_batch_new(1u << 9, 10, &untouched) == BAMS3_ERR_INVALID, "unknown bits");
    CHECK(strstr(bams3_last_error(), "unknown column bits") != NULL, "%s", bams3_last_error());
    CHECK(bams3_batch_new(0, 10, NULL) == BAMS3_ERR_NULL, "NULL out");
    bams3_query *uq = (bams3_query *) &c;
    CHECK(bams3_reader_query_columns(r, NULL, NULL, 1u << 6, &uq) == BAMS3_ERR_INVALID,
          "unknown query column bits");
    CHECK(uq == (bams3_query *) &c, "query out written on failure");
    CHECK(bams3_reader_query_columns(r, NULL, NULL, 0, NULL) == BAMS3_ERR_NULL, "NULL query out");
    CHECK(bams3_query_next_batch(NULL, b) == BAMS3_ERR_NULL, "NULL query");
    CHECK(bams3_query_next_batch(q, NULL) == BAMS3_ERR_NULL, "NULL batch");
    CHECK(bams3_batch_get_columns(NULL, &c) == BAMS3_ERR_NULL, "NULL batch for columns");
    CHECK(bams3_batch_get_columns(b, NULL) == BAMS3_ERR_NULL, "NULL columns");
    bams3_batch_free(NULL);
    bams3_batch_free(b);
    bams3_query_free(q);
    bams3_reader_free(r);

    printf("test_batch: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
