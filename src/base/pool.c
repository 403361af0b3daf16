/* Persistent thread pool. A run publishes (fn, ctx, n_tasks) and bumps a generation counter;
 * workers (and the caller) claim task indices from one atomic word holding (generation, n_tasks,
 * next index), so a worker still leaving run N can never claim an index of run N+1 with run N's
 * task count; then the caller waits for the done count. Workers spin briefly before sleeping on a condition
 * variable, so back-to-back runs in a forward pass cost no syscalls. */
#include "baimo/base.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct bm_pool {
    int n_threads; /* including the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic uint64_t gen;
    _Atomic uint64_t work; /* gen (24 bits) << 40 | n_tasks << 20 | next index */
    _Atomic int n_done;
    _Atomic int stop;
    bm_task_fn fn;
    void *ctx;
    int n_tasks;
};

enum { SPIN_ITERS = 20000 };

enum { TASK_BITS = 20 };
#define TASK_MASK ((UINT64_C(1) << TASK_BITS) - 1)
#define GEN_MASK ((UINT64_C(1) << 24) - 1)

static void run_tasks(bm_pool *p, uint64_t gen) {
    uint64_t v = atomic_load_explicit(&p->work, memory_order_acquire);
    for (;;) {
        const int i = (int)(v & TASK_MASK), n = (int)((v >> TASK_BITS) & TASK_MASK);
        if ((v >> (2 * TASK_BITS)) != (gen & GEN_MASK) || i >= n) break;
        if (!atomic_compare_exchange_weak_explicit(&p->work, &v, v + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        /* Index i < n of this generation is ours: the run cannot finish (nor fn/ctx change)
         * before we count it done. */
        p->fn(p->ctx, i, n);
        atomic_fetch_add_explicit(&p->n_done, 1, memory_order_release);
        v = atomic_load_explicit(&p->work, memory_order_acquire);
    }
}

static void *worker(void *arg) {
    bm_pool *p = arg;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (atomic_load_explicit(&p->stop, memory_order_relaxed)) return NULL;
            if (++spins < SPIN_ITERS) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen &&
                   !atomic_load_explicit(&p->stop, memory_order_relaxed))
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load_explicit(&p->stop, memory_order_relaxed)) return NULL;
        seen = g;
        run_tasks(p, g);
    }
}

int bm_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

bm_pool *bm_pool_new(int n_threads, bm_err *err) {
    if (n_threads <= 0) n_threads = bm_cpu_count();
    if (n_threads > 512) n_threads = 512;
    bm_pool *p = bm_calloc(1, sizeof *p, err);
    if (!p) return NULL;
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->threads = bm_calloc((size_t)n_threads - 1, sizeof *p->threads, err);
        if (!p->threads) {
            free(p);
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
                p->n_threads = i + 1;
                bm_pool_free(p);
                bm_err_set(err, BM_ENOMEM, "pool: cannot start thread %d of %d", i + 1,
                           n_threads);
                return NULL;
            }
        }
    }
    return p;
}

void bm_pool_free(bm_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads - 1; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

int bm_pool_n_threads(const bm_pool *p) { return p ? p->n_threads : 1; }

void bm_pool_run(bm_pool *p, bm_task_fn fn, void *ctx, int n_tasks) {
    if (!p) {
        if (n_tasks <= 0) n_tasks = 1;
        for (int i = 0; i < n_tasks; i++) fn(ctx, i, n_tasks);
        return;
    }
    if (n_tasks <= 0) n_tasks = p->n_threads;
    if (p->n_threads == 1 || n_tasks == 1) {
        for (int i = 0; i < n_tasks; i++) fn(ctx, i, n_tasks);
        return;
    }
    BM_ASSERT((uint64_t)n_tasks <= TASK_MASK);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->n_done, 0, memory_order_relaxed);
    const uint64_t g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->work, (g & GEN_MASK) << (2 * TASK_BITS) |
                                        (uint64_t)n_tasks << TASK_BITS,
                          memory_order_release);
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->gen, g, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, g);
    while (atomic_load_explicit(&p->n_done, memory_order_acquire) < n_tasks) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
}
