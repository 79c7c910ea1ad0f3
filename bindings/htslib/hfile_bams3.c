/*
 * hfile_bams3.c: an htslib hFILE plugin, so every htslib program (samtools, bcftools, ...)
 * reads BAMS3 datasets: bams3:///abs/path/sample.bams3 and bams3+s3://bucket/prefix.
 *
 * A thin skin over libbams3's bams3_stream_* functions: the dataset is served as a
 * coordinate-sorted BAM of stored BGZF blocks, and <url>.csi as an index of that stream
 * (isremote() says 1 so that htslib asks for it). All logic lives in Rust (bams3-core's
 * bamstream module); see docs/HTSLIB.md.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <htslib/hfile.h>

#include "bams3.h"

/* Debian's libhts-dev does not install hfile_internal.h; these are its plugin declarations
 * (unchanged from htslib 1.10 to 1.21), implemented by libhts.so. */
struct hFILE_backend {
    ssize_t (*read)(hFILE *fp, void *buffer, size_t nbytes);
    ssize_t (*write)(hFILE *fp, const void *buffer, size_t nbytes);
    off_t (*seek)(hFILE *fp, off_t offset, int whence);
    int (*flush)(hFILE *fp);
    int (*close)(hFILE *fp);
};
struct hFILE_scheme_handler {
    hFILE *(*open)(const char *filename, const char *mode);
    int (*isremote)(const char *filename);
    const char *provider;
    int priority;
    hFILE *(*vopen)(const char *filename, const char *mode, va_list args);
};
struct hFILE_plugin {
    int api_version;
    void *obj;
    const char *name;
    void (*destroy)(void);
};
extern hFILE *hfile_init(size_t struct_size, const char *mode, size_t capacity);
extern void hfile_destroy(hFILE *fp);
extern void hfile_add_scheme_handler(const char *scheme, const struct hFILE_scheme_handler *handler);
int hfile_plugin_init(struct hFILE_plugin *self);

typedef struct {
    hFILE base;
    bams3_stream *stream;
    uint64_t pos, size;
} hFILE_bams3;

static int errno_of(int rc) {
    switch (rc) {
    case BAMS3_ERR_NULL:
    case BAMS3_ERR_INVALID:
    case BAMS3_ERR_UTF8:
    case BAMS3_ERR_REGION: return EINVAL;
    case BAMS3_ERR_NOT_FOUND:
    case BAMS3_ERR_INCOMPLETE: return ENOENT;
    case BAMS3_ERR_CANCELLED: return ECANCELED;
    default: return EIO;
    }
}

static ssize_t bams3_hread(hFILE *fpv, void *buffer, size_t nbytes) {
    hFILE_bams3 *fp = (hFILE_bams3 *)fpv;
    size_t n = 0;
    int rc = bams3_stream_read(fp->stream, fp->pos, buffer, nbytes, &n);
    if (rc != BAMS3_OK) {
        fprintf(stderr, "[hfile_bams3] %s\n", bams3_last_error());
        errno = errno_of(rc);
        return -1;
    }
    fp->pos += n;
    return (ssize_t)n;
}

static ssize_t bams3_hwrite(hFILE *fp, const void *buffer, size_t nbytes) {
    (void)fp, (void)buffer, (void)nbytes;
    errno = EROFS;
    return -1;
}

static off_t bams3_hseek(hFILE *fpv, off_t offset, int whence) {
    hFILE_bams3 *fp = (hFILE_bams3 *)fpv;
    int64_t base;
    switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)fp->pos; break;
    case SEEK_END: base = (int64_t)fp->size; break;
    default: errno = EINVAL; return -1;
    }
    if ((offset < 0 && base + offset < 0) || (offset > 0 && base > INT64_MAX - offset)) {
        errno = EINVAL;
        return -1;
    }
    fp->pos = (uint64_t)(base + offset);
    return (off_t)fp->pos;
}

static int bams3_hflush(hFILE *fp) {
    (void)fp;
    return 0;
}

static int bams3_hclose(hFILE *fpv) {
    hFILE_bams3 *fp = (hFILE_bams3 *)fpv;
    bams3_stream_free(fp->stream);
    fp->stream = NULL;
    return 0;
}

static const struct hFILE_backend bams3_backend = {
    bams3_hread, bams3_hwrite, bams3_hseek, bams3_hflush, bams3_hclose,
};

static int is_index_probe(const char *url) {
    static const char *const suffixes[] = {".bai", ".crai", ".tbi", ".csi"};
    size_t n = strlen(url);
    for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcmp(url + n - k, suffixes[i]) == 0) return 1;
    }
    return 0;
}

static hFILE *bams3_hopen(const char *url, const char *mode) {
    if (strpbrk(mode, "wa+") != NULL) {
        fprintf(stderr, "[hfile_bams3] %s: BAMS3 datasets are read-only through htslib; "
                        "write them with `bams3 convert`\n", url);
        errno = EROFS;
        return NULL;
    }
    bams3_stream *stream = NULL;
    int rc = bams3_stream_open(url, &stream);
    if (rc != BAMS3_OK) {
        /* htslib probes <url>.bai after <url>.csi: quiet for those. */
        if (!(rc == BAMS3_ERR_NOT_FOUND && is_index_probe(url)))
            fprintf(stderr, "[hfile_bams3] %s\n", bams3_last_error());
        errno = errno_of(rc);
        return NULL;
    }
    uint64_t size = 0;
    if (bams3_stream_size(stream, &size) != BAMS3_OK) {
        bams3_stream_free(stream);
        errno = EIO;
        return NULL;
    }
    hFILE_bams3 *fp = (hFILE_bams3 *)hfile_init(sizeof(hFILE_bams3), mode, 0);
    if (fp == NULL) {
        bams3_stream_free(stream);
        return NULL;
    }
    fp->stream = stream;
    fp->pos = 0;
    fp->size = size;
    fp->base.backend = &bams3_backend;
    return &fp->base;
}

/* 1: htslib then looks for <url>.csi through this plugin (and saves it in the cwd). */
static int bams3_isremote(const char *url) {
    (void)url;
    return 1;
}

int hfile_plugin_init(struct hFILE_plugin *self) {
    static const struct hFILE_scheme_handler handler = {
        bams3_hopen, bams3_isremote, "bams3", 50, NULL,
    };
    self->name = "BAMS3 datasets (bams3:///path, bams3+s3://bucket/prefix)";
    /* Never call hopen() here: the plugin loader's lock is held. */
    hfile_add_scheme_handler("bams3", &handler);
    hfile_add_scheme_handler("bams3+s3", &handler);
    return 0;
}
