/* RNG (xoshiro256**, splitmix64 seeding), monotonic time, terminal progress bar. */
#include "baimo/base.h"

#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void bm_rng_seed(bm_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t bm_rng_u64(bm_rng *r) {
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

float bm_rng_f32(bm_rng *r) { return (float)(bm_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

float bm_rng_normal(bm_rng *r) {
    double u1 = ((double)(bm_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(bm_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

double bm_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void bm_progress_init(bm_progress *p, void *stream, const char *label, uint64_t total) {
    p->stream = stream ? stream : stderr;
    p->label = label;
    p->total = total;
    p->done = 0;
    p->t_start = p->t_last = bm_time_now();
    p->tty = isatty(fileno((FILE *)p->stream));
}

static void progress_draw(bm_progress *p, bool final) {
    FILE *f = p->stream;
    double el = bm_time_now() - p->t_start;
    double frac = p->total ? (double)p->done / (double)p->total : 1.0;
    if (frac > 1) frac = 1;
    int w = 30, fill = (int)(frac * w);
    char bar[32];
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
    bar[w] = 0;
    double eta = frac > 0 ? el / frac - el : 0;
    if (final)
        fprintf(f, "\r%s [%s] 100.0%% %.1fs\n", p->label, bar, el);
    else
        fprintf(f, "\r%s [%s] %5.1f%% %.1fs eta %.0fs ", p->label, bar, frac * 100, el, eta);
    fflush(f);
}

void bm_progress_update(bm_progress *p, uint64_t done) {
    p->done = done;
    if (!p->tty) return;
    double now = bm_time_now();
    if (now - p->t_last < 0.1 && done < p->total) return;
    p->t_last = now;
    progress_draw(p, false);
}

void bm_progress_done(bm_progress *p) {
    p->done = p->total;
    if (p->tty) {
        fprintf((FILE *)p->stream, "\r\033[K");
        progress_draw(p, true);
    }
}
