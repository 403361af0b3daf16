/* Read-only file mapping and bounded whole-file reads. */
#include "baimo/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

bm_status bm_mmap_open(bm_mmap *m, const char *path, bm_err *err) {
    m->data = NULL;
    m->n_bytes = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bm_err_set(err, BM_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return bm_err_set(err, BM_EIO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return bm_err_set(err, BM_EIO, "'%s' is not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return bm_err_set(err, BM_EIO, "cannot map '%s': %s", path, strerror(e));
        }
        m->data = p;
        m->n_bytes = (size_t)st.st_size;
    }
    close(fd);
    return BM_OK;
}

void bm_mmap_close(bm_mmap *m) {
    if (m && m->data) munmap((void *)m->data, m->n_bytes);
    if (m) {
        m->data = NULL;
        m->n_bytes = 0;
    }
}

bm_status bm_file_read(const char *path, char **out, size_t *n_out, size_t max_bytes,
                       bm_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bm_err_set(err, BM_EIO, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = max_bytes < 4095 ? max_bytes + 1 : 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return bm_err_set(err, BM_ENOMEM, "out of memory reading '%s'", path);
    }
    for (;;) {
        if (n + 1 >= cap) { /* buffer full: grow, or fail if past the limit */
            if (n >= max_bytes) {
                char probe;
                ssize_t r = read(fd, &probe, 1);
                if (r == 0) break;
                free(buf);
                close(fd);
                return bm_err_set(err, BM_ERANGE, "'%s' is larger than the limit of %zu bytes",
                                  path, max_bytes);
            }
            size_t ncap = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                close(fd);
                return bm_err_set(err, BM_ENOMEM, "out of memory reading '%s'", path);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            close(fd);
            return bm_err_set(err, BM_EIO, "cannot read '%s': %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    if (n_out) *n_out = n;
    return BM_OK;
}

void bm_mmap_release(const bm_mmap *m, const void *p, size_t n) {
    if (!m || !m->data || !p) return;
    const uintptr_t lo = (uintptr_t)m->data, hi = lo + m->n_bytes, pg = 4096;
    uintptr_t a = (uintptr_t)p, e = a + n;
    if (a < lo || e > hi || e < a) return;
    a = (a + pg - 1) & ~(pg - 1);
    e &= ~(pg - 1);
    /* MAP_PRIVATE file pages never written: DONTNEED drops them, the page cache keeps them.
     * RANDOM: a later read (an embedding row of a tied head) faults in its own page, not a
     * readahead / fault-around window of neighbours. */
    if (e > a) {
        (void)madvise((void *)a, e - a, MADV_DONTNEED);
        (void)madvise((void *)a, e - a, MADV_RANDOM);
    }
}
