/*
 * region_query: prints the records of each region of a BAM-like URL as SAM, through htslib's
 * own index API (sam_index_load + sam_itr_querys). Nothing here knows BAMS3: run on a
 * bams3:// URL it shows that any htslib program works through the hfile_bams3 plugin.
 *
 *   region_query URL REGION...
 */
#include <stdio.h>

#include <htslib/sam.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: region_query URL REGION...\n");
        return 2;
    }
    samFile *in = sam_open(argv[1], "r");
    if (in == NULL) {
        fprintf(stderr, "region_query: cannot open %s\n", argv[1]);
        return 1;
    }
    sam_hdr_t *h = sam_hdr_read(in);
    hts_idx_t *idx = h ? sam_index_load(in, argv[1]) : NULL;
    samFile *out = sam_open("-", "w");
    bam1_t *b = bam_init1();
    int status = 0;
    if (h == NULL || idx == NULL || out == NULL || b == NULL) {
        fprintf(stderr, "region_query: cannot read the header or index of %s\n", argv[1]);
        status = 1;
    }
    for (int i = 2; status == 0 && i < argc; i++) {
        hts_itr_t *it = sam_itr_querys(idx, h, argv[i]);
        if (it == NULL) {
            fprintf(stderr, "region_query: bad region %s\n", argv[i]);
            status = 1;
            break;
        }
        int r;
        while ((r = sam_itr_next(in, it, b)) >= 0) {
            if (sam_write1(out, h, b) < 0) {
                status = 1;
                break;
            }
        }
        if (r < -1) {
            fprintf(stderr, "region_query: error reading %s\n", argv[i]);
            status = 1;
        }
        hts_itr_destroy(it);
    }
    bam_destroy1(b);
    if (out && sam_close(out) < 0) status = 1;
    if (idx) hts_idx_destroy(idx);
    if (h) sam_hdr_destroy(h);
    sam_close(in);
    return status;
}
