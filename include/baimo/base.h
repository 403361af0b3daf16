/* baimo base layer: status codes and error messages, overflow-checked sizes, arenas,
 * read-only mmap, a persistent thread pool, UTF-8 helpers, RNG, time and a terminal
 * progress bar. Depends on libc and pthreads only. The library never prints or exits:
 * every fallible call returns bm_status and fills a bm_err the caller owns. */
#ifndef BAIMO_BASE_H
#define BAIMO_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status and errors ---------------------------------------------------------------- */

typedef enum bm_status {
    BM_OK = 0,
    BM_EINVAL,       /* bad argument or bad request value */
    BM_ENOMEM,       /* allocation failed or would exceed a limit */
    BM_EIO,          /* open/read/write failed */
    BM_EFORMAT,      /* malformed file or data */
    BM_EUNSUPPORTED, /* well-formed but not supported (unknown arch, dtype, version) */
    BM_ERANGE,       /* value outside a limit (context length, dims) */
    BM_ENOTFOUND,    /* missing tensor, key, file */
    BM_EOVERFLOW,    /* size arithmetic overflow */
    BM_ECANCELED,    /* stopped by the caller */
    BM_EBUSY,        /* resource full, try later */
    BM_EINTERNAL,    /* broken invariant detected at run time */
} bm_status;

#define BM_ERR_MSG_MAX 512

/* Caller-owned error record. Every fallible library function takes `bm_err *err` last;
 * err may be NULL. On failure the message names the module, the value and the limit. */
typedef struct bm_err {
    bm_status code;
    char msg[BM_ERR_MSG_MAX];
} bm_err;

/* Sets err (if non-NULL) and returns code, so callers can `return bm_err_set(...)`. */
bm_status bm_err_set(bm_err *err, bm_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "prefix: " to an existing message (for context as errors bubble up). */
bm_status bm_err_wrap(bm_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Short symbolic name of a status ("EFORMAT"). Static string. */
const char *bm_status_name(bm_status s);
void bm_err_clear(bm_err *err);

/* Aborts with file:line on a broken invariant. Never for bad input. */
#define BM_ASSERT(x)                                                                           \
    do {                                                                                       \
        if (!(x)) bm_assert_fail(__FILE__, __LINE__, #x);                                      \
    } while (0)
_Noreturn void bm_assert_fail(const char *file, int line, const char *expr);

/* ---- overflow-checked sizes ----------------------------------------------------------- */

/* Each returns false (and leaves *out unspecified) on overflow. */
static inline bool bm_size_mul(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool bm_size_add(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool bm_u64_mul(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool bm_u64_add(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
/* Round x up to a multiple of a (a is a power of two). false on overflow. */
static inline bool bm_size_align(size_t x, size_t a, size_t *out) {
    size_t t;
    if (!bm_size_add(x, a - 1, &t)) return false;
    *out = t & ~(a - 1);
    return true;
}

/* Human-readable byte count into buf ("1.5 GiB"). Returns buf. */
const char *bm_fmt_bytes(uint64_t n, char *buf, size_t cap);

/* ---- allocation ----------------------------------------------------------------------- */

/* malloc/calloc wrappers that set err on failure; sizes checked for overflow. */
void *bm_malloc(size_t n, bm_err *err);
void *bm_calloc(size_t n, size_t size, bm_err *err);
/* 64-byte aligned allocation; free with bm_free_aligned(). */
void *bm_malloc_aligned(size_t n, bm_err *err);
void bm_free_aligned(void *p);

/* ---- arenas --------------------------------------------------------------------------- */

/* A bump allocator over chunks. Allocations are 64-byte aligned. Reset frees everything at
 * once (chunks are kept for reuse). Not thread-safe: one owner. */
typedef struct bm_arena bm_arena;
struct bm_arena_chunk;
struct bm_arena {
    struct bm_arena_chunk *head;
    size_t chunk_bytes;  /* default size of a new chunk */
    size_t limit_bytes;  /* 0 = unlimited; otherwise total chunk bytes may not exceed this */
    size_t total_bytes;  /* bytes in all chunks */
    size_t used_bytes;   /* bytes handed out since the last reset */
    size_t peak_bytes;   /* max used_bytes seen */
};
void bm_arena_init(bm_arena *a, size_t chunk_bytes, size_t limit_bytes);
void bm_arena_fini(bm_arena *a);
/* Returns 64-byte aligned memory valid until reset/fini, or NULL and err set. */
void *bm_arena_alloc(bm_arena *a, size_t n, bm_err *err);
void *bm_arena_calloc(bm_arena *a, size_t count, size_t size, bm_err *err);
char *bm_arena_strdup(bm_arena *a, const char *s, size_t len, bm_err *err);
void bm_arena_reset(bm_arena *a);

/* ---- read-only file mapping ----------------------------------------------------------- */

typedef struct bm_mmap {
    const uint8_t *data; /* NULL for an empty file */
    size_t n_bytes;
} bm_mmap;
/* Maps path read-only. Returns BM_EIO with the OS reason on failure. */
bm_status bm_mmap_open(bm_mmap *m, const char *path, bm_err *err);
void bm_mmap_close(bm_mmap *m);
/* Hands the resident pages inside [p, p + n) of the mapping back to the kernel (whole pages
 * only; the contents fault back in from the file if read again). No-op outside the mapping. */
void bm_mmap_release(const bm_mmap *m, const void *p, size_t n);
/* Whole-file read into a malloc'd NUL-terminated buffer; *n_out excludes the NUL. Free with free(). */
bm_status bm_file_read(const char *path, char **out, size_t *n_out, size_t max_bytes, bm_err *err);

/* ---- thread pool ---------------------------------------------------------------------- */

/* Persistent workers; bm_pool_run blocks until every task index in [0, n_tasks) ran once.
 * Task fn(ctx, ith, nth) with ith in [0, nth), nth = n_tasks. The calling thread works too.
 * One bm_pool_run at a time per pool (not reentrant). No allocation per run. */
typedef struct bm_pool bm_pool;
typedef void (*bm_task_fn)(void *ctx, int ith, int nth);
/* n_threads <= 0 means the number of online CPUs. Returns owned; free with bm_pool_free(). */
bm_pool *bm_pool_new(int n_threads, bm_err *err);
void bm_pool_free(bm_pool *p);
int bm_pool_n_threads(const bm_pool *p);
/* Runs fn over n_tasks indices; n_tasks <= 0 means one per thread. p may be NULL (serial). */
void bm_pool_run(bm_pool *p, bm_task_fn fn, void *ctx, int n_tasks);
/* Splits [0, n) into nth near-equal ranges; range of part ith in [*lo, *hi). */
static inline void bm_split_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t per = n / nth, rem = n % nth;
    *lo = ith * per + (ith < rem ? ith : rem);
    *hi = *lo + per + (ith < rem ? 1 : 0);
}
int bm_cpu_count(void);

/* ---- UTF-8 ---------------------------------------------------------------------------- */

/* Length of the UTF-8 sequence that starts with byte b (1..4), or 0 if b cannot start one. */
int bm_utf8_seq_len(uint8_t b);
/* Decodes one code point at s[0..n). Returns bytes consumed (1..4) and *cp, or 0 if the
 * sequence is invalid/overlong/surrogate/truncated (then *cp = 0xFFFD). */
int bm_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Encodes cp into out (>= 4 bytes). Returns bytes written, 0 for an invalid code point. */
int bm_utf8_encode(uint32_t cp, uint8_t *out);
/* true if s[0..n) is entirely valid UTF-8. */
bool bm_utf8_valid(const uint8_t *s, size_t n);
/* Number of bytes at the end of s[0..n) that form an incomplete (but so far valid) sequence. */
size_t bm_utf8_incomplete_tail(const uint8_t *s, size_t n);

/* ---- random numbers ------------------------------------------------------------------- */

/* xoshiro256** seeded by splitmix64; deterministic across platforms. */
typedef struct bm_rng {
    uint64_t s[4];
} bm_rng;
void bm_rng_seed(bm_rng *r, uint64_t seed);
uint64_t bm_rng_u64(bm_rng *r);
/* Uniform in [0, 1) with 24 random bits. */
float bm_rng_f32(bm_rng *r);
/* Standard normal (Box-Muller). */
float bm_rng_normal(bm_rng *r);

/* ---- time and progress ---------------------------------------------------------------- */

/* Monotonic seconds. */
double bm_time_now(void);

/* A one-line progress bar on a terminal stream; silent when the stream is not a TTY
 * (then only the final line is printed by bm_progress_done if verbose). Used by the CLI
 * and long library jobs through a callback, never printed by the library itself. */
typedef struct bm_progress {
    void *stream; /* FILE*, NULL = stderr */
    const char *label;
    uint64_t total, done;
    double t_start, t_last;
    bool tty;
} bm_progress;
void bm_progress_init(bm_progress *p, void *stream, const char *label, uint64_t total);
void bm_progress_update(bm_progress *p, uint64_t done);
void bm_progress_done(bm_progress *p);

/* Library log/progress hook: long jobs call this with done/total; NULL = silent. */
typedef void (*bm_progress_fn)(void *user, const char *what, uint64_t done, uint64_t total);

#ifdef __cplusplus
}
#endif
#endif
