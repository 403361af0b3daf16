/* Status codes, error messages and the invariant-failure handler. */
#include "baimo/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bm_status bm_err_set(bm_err *err, bm_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

bm_status bm_err_wrap(bm_err *err, const char *fmt, ...) {
    if (!err) return BM_EINTERNAL;
    char buf[2 * BM_ERR_MSG_MAX + 4];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, BM_ERR_MSG_MAX, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > BM_ERR_MSG_MAX - 1) n = BM_ERR_MSG_MAX - 1;
    memcpy(buf + n, ": ", 2);
    memcpy(buf + n + 2, err->msg, BM_ERR_MSG_MAX);
    buf[n + 2 + BM_ERR_MSG_MAX - 1] = 0;
    memcpy(err->msg, buf, BM_ERR_MSG_MAX - 1);
    err->msg[BM_ERR_MSG_MAX - 1] = 0;
    return err->code;
}

void bm_err_clear(bm_err *err) {
    if (err) {
        err->code = BM_OK;
        err->msg[0] = 0;
    }
}

const char *bm_status_name(bm_status s) {
    static const char *const names[] = {"OK",       "EINVAL",    "ENOMEM",    "EIO",
                                        "EFORMAT",  "EUNSUPPORTED", "ERANGE", "ENOTFOUND",
                                        "EOVERFLOW", "ECANCELED", "EBUSY",    "EINTERNAL"};
    if ((unsigned)s < sizeof names / sizeof names[0]) return names[s];
    return "E?";
}

void bm_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "baimo: invariant broken at %s:%d: %s\n", file, line, expr);
    abort();
}

const char *bm_fmt_bytes(uint64_t n, char *buf, size_t cap) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else
        snprintf(buf, cap, "%.2f %s", v, units[u]);
    return buf;
}

void *bm_malloc(size_t n, bm_err *err) {
    void *p = malloc(n ? n : 1);
    if (!p) bm_err_set(err, BM_ENOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *bm_calloc(size_t n, size_t size, bm_err *err) {
    size_t t;
    if (!bm_size_mul(n, size, &t)) {
        bm_err_set(err, BM_EOVERFLOW, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = calloc(t ? n : 1, t ? size : 1);
    if (!p) bm_err_set(err, BM_ENOMEM, "out of memory allocating %zu bytes", t);
    return p;
}

void *bm_malloc_aligned(size_t n, bm_err *err) {
    size_t r;
    if (!bm_size_align(n ? n : 1, 64, &r)) {
        bm_err_set(err, BM_EOVERFLOW, "aligned allocation of %zu bytes overflows", n);
        return NULL;
    }
    void *p = aligned_alloc(64, r);
    if (!p) bm_err_set(err, BM_ENOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void bm_free_aligned(void *p) { free(p); }
