/*
 * htslib_import.c: an htslib program handing its bam1_t records to libbams3.
 *
 * Reads SAM/BAM/CRAM with htslib and writes a BAMS3 dataset with bams3_writer_add_bam, the
 * path an aligner built on htslib would take (no SAM text in between).
 *
 *   ./htslib_import in.bam out.bams3
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <htslib/sam.h>

#include "bams3.h"

static void put32(uint8_t *p, uint32_t v) {
    p[0] = v & 0xff;
    p[1] = (v >> 8) & 0xff;
    p[2] = (v >> 16) & 0xff;
    p[3] = (v >> 24) & 0xff;
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = v & 0xff;
    p[1] = (v >> 8) & 0xff;
}

/*
 * Serialises `b` in the layout bams3_writer_add_bam takes: what bam_write1() writes after
 * block_size. htslib pads the read name with l_extranul NULs in memory; BAM files (and BAMS3)
 * do not, so they are left out and l_read_name shrinks accordingly. Returns the length, or 0
 * when out of memory.
 */
static size_t bam1_encode(const bam1_t *b, uint8_t **buf, size_t *cap) {
    const bam1_core_t *c = &b->core;
    size_t l_name = (size_t)c->l_qname - c->l_extranul;
    size_t rest = (size_t)b->l_data - c->l_qname;
    size_t len = 32 + l_name + rest;
    if (len > *cap) {
        uint8_t *p = realloc(*buf, len);
        if (!p)
            return 0;
        *buf = p;
        *cap = len;
    }
    uint8_t *p = *buf;
    put32(p + 0, (uint32_t)c->tid);
    put32(p + 4, (uint32_t)c->pos);
    p[8] = (uint8_t)l_name;
    p[9] = c->qual;
    put16(p + 10, c->bin);
    put16(p + 12, (uint16_t)c->n_cigar);
    put16(p + 14, c->flag);
    put32(p + 16, (uint32_t)c->l_qseq);
    put32(p + 20, (uint32_t)c->mtid);
    put32(p + 24, (uint32_t)c->mpos);
    put32(p + 28, (uint32_t)c->isize);
    memcpy(p + 32, b->data, l_name - 1);
    p[32 + l_name - 1] = '\0';
    memcpy(p + 32 + l_name, b->data + c->l_qname, rest); /* CIGAR, SEQ, QUAL, tags */
    return len;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN.bam OUT_DATASET\n", argv[0]);
        return 2;
    }
    samFile *in = sam_open(argv[1], "r");
    sam_hdr_t *h = in ? sam_hdr_read(in) : NULL;
    if (!h) {
        fprintf(stderr, "htslib_import: cannot read %s\n", argv[1]);
        if (in)
            sam_close(in);
        return 1;
    }
    /* Parsing the header makes htslib add the @SQ lines of references that a BAM keeps only in
     * its binary list; the writer takes its references from the text. */
    if (sam_hdr_count_lines(h, "SQ") < 0) {
        fprintf(stderr, "htslib_import: %s: bad header\n", argv[1]);
        sam_hdr_destroy(h);
        sam_close(in);
        return 1;
    }
    bams3_writer *w = NULL;
    int rc = bams3_writer_open(argv[2], sam_hdr_str(h), NULL, &w);
    if (rc != BAMS3_OK) {
        fprintf(stderr, "htslib_import: %s\n", bams3_last_error());
        sam_hdr_destroy(h);
        sam_close(in);
        return 1;
    }
    bam1_t *b = bam_init1();
    uint8_t *buf = NULL;
    size_t cap = 0, n = 0;
    int r;
    while (rc == BAMS3_OK && (r = sam_read1(in, h, b)) >= 0) {
        size_t len = bam1_encode(b, &buf, &cap);
        rc = len ? bams3_writer_add_bam(w, buf, len) : BAMS3_ERR_INVALID;
        if (rc != BAMS3_OK)
            fprintf(stderr, "htslib_import: record %zu: %s\n", n + 1, bams3_last_error());
        n++;
    }
    if (rc == BAMS3_OK && r < -1) {
        fprintf(stderr, "htslib_import: %s: read error\n", argv[1]);
        rc = BAMS3_ERR_IO;
    }
    if (rc == BAMS3_OK) {
        rc = bams3_writer_finish(w);
        if (rc != BAMS3_OK)
            fprintf(stderr, "htslib_import: finish: %s\n", bams3_last_error());
    }
    bams3_writer_free(w); /* aborts if not finished */
    free(buf);
    bam_destroy1(b);
    sam_hdr_destroy(h);
    sam_close(in);
    return rc == BAMS3_OK ? 0 : 1;
}
