/*
 * mini_aligner.c: what an aligner does with libbams3, minus the aligning.
 *
 * Reads SAM on standard input (header lines, then records) and writes a BAMS3 dataset through
 * the writer API from two threads, each adding every other record, as an aligner's worker
 * threads would. Records reach the writer in no particular order; the library sorts them out.
 *
 *   samtools view -h --no-PG in.bam | ./mini_aligner out.bams3
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "bams3.h"

struct lines {
    char **text;
    size_t *len;
    size_t n, cap;
};

struct job {
    bams3_writer *w;
    const struct lines *records;
    size_t first; /* this thread adds records first, first + 2, first + 4, ... */
    int status;
};

static void *add_records(void *arg) {
    struct job *job = arg;
    for (size_t i = job->first; i < job->records->n; i += 2) {
        int rc = bams3_writer_add_sam(job->w, job->records->text[i], job->records->len[i]);
        if (rc != BAMS3_OK) {
            /* bams3_last_error() is per thread: read it on the thread that failed. */
            fprintf(stderr, "mini_aligner: record %zu: %s\n", i + 1, bams3_last_error());
            job->status = rc;
            break;
        }
    }
    return NULL;
}

static void push(struct lines *l, char *text, size_t len) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->text = realloc(l->text, l->cap * sizeof *l->text);
        l->len = realloc(l->len, l->cap * sizeof *l->len);
        if (!l->text || !l->len) {
            perror("mini_aligner");
            exit(1);
        }
    }
    l->text[l->n] = text;
    l->len[l->n++] = len;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT_DATASET < input.sam\n", argv[0]);
        return 2;
    }
    unsigned abi = bams3_abi_version();
    if ((abi >> 16) != BAMS3_ABI_VERSION_MAJOR || (abi & 0xffff) < BAMS3_ABI_VERSION_MINOR) {
        fprintf(stderr, "mini_aligner: libbams3 ABI %u.%u, need %u.%u\n", abi >> 16,
                abi & 0xffff, BAMS3_ABI_VERSION_MAJOR, BAMS3_ABI_VERSION_MINOR);
        return 1;
    }

    /* Header lines first, then records. */
    char *header = calloc(1, 1);
    size_t header_len = 0;
    struct lines records = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (records.n == 0 && line[0] == '@') {
            header = realloc(header, header_len + (size_t)n + 1);
            memcpy(header + header_len, line, (size_t)n + 1);
            header_len += (size_t)n;
        } else {
            push(&records, line, (size_t)n); /* the writer ignores the trailing newline */
            line = NULL;
            cap = 0;
        }
    }
    free(line);

    bams3_writer_options opts;
    bams3_writer_options_default(&opts);
    opts.threads = 2;
    bams3_writer *w = NULL;
    int rc = bams3_writer_open(argv[1], header, &opts, &w);
    free(header);
    if (rc != BAMS3_OK) {
        fprintf(stderr, "mini_aligner: %s: %s\n", bams3_strerror(rc), bams3_last_error());
        return 1;
    }

    struct job jobs[2] = {{w, &records, 0, BAMS3_OK}, {w, &records, 1, BAMS3_OK}};
    pthread_t threads[2];
    for (int t = 0; t < 2; t++)
        pthread_create(&threads[t], NULL, add_records, &jobs[t]);
    for (int t = 0; t < 2; t++)
        pthread_join(threads[t], NULL);

    if (jobs[0].status == BAMS3_OK && jobs[1].status == BAMS3_OK) {
        rc = bams3_writer_finish(w);
        if (rc != BAMS3_OK)
            fprintf(stderr, "mini_aligner: finish: %s\n", bams3_last_error());
    } else {
        rc = jobs[0].status ? jobs[0].status : jobs[1].status;
        bams3_writer_abort(w); /* leave nothing that looks complete */
    }
    bams3_writer_free(w);
    for (size_t i = 0; i < records.n; i++)
        free(records.text[i]);
    free(records.text);
    free(records.len);
    if (rc == BAMS3_OK)
        fprintf(stderr, "mini_aligner: wrote %zu records to %s\n", records.n, argv[1]);
    return rc == BAMS3_OK ? 0 : 1;
}
