/* libFuzzer target for the GGUF reader: opens the input with bm_gguf_open_mem and reads every
 * key/value, array element and tensor byte it reports, so a view past the input is caught by
 * ASan. Seeds: tests/fuzz/seeds/gguf/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "baimo/gguf.h"

static const size_t ELEM[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* an exact-size copy so reads one byte past the end are reported */
    uint8_t *p = malloc(size ? size : 1);
    if (!p) return 0;
    memcpy(p, data, size);
    bm_gguf *g = NULL;
    bm_err err = {0};
    volatile unsigned h = 0;
    if (bm_gguf_open_mem(p, size, &g, &err) == BM_OK) {
        for (int64_t i = 0; i < bm_gguf_n_kv(g); i++) {
            bm_str k = bm_gguf_kv_key(g, i);
            for (size_t j = 0; j < k.n; j++) h += (uint8_t)k.p[j];
            char key[256];
            if (k.n < sizeof key) {
                memcpy(key, k.p, k.n);
                key[k.n] = 0;
                if (bm_gguf_find_key(g, key) != i) abort();
                uint32_t u;
                int64_t v;
                float f;
                bool b;
                bm_str s;
                h += bm_gguf_get_u32(g, key, &u) + bm_gguf_get_i64(g, key, &v) +
                     bm_gguf_get_f32(g, key, &f) + bm_gguf_get_bool(g, key, &b);
                if (bm_gguf_get_str(g, key, &s))
                    for (size_t j = 0; j < s.n; j++) h += (uint8_t)s.p[j];
            }
            if (bm_gguf_kv_type(g, i) != BM_GGUF_ARRAY) continue;
            uint64_t n = bm_gguf_arr_n(g, i);
            bm_gguf_type et = bm_gguf_arr_type(g, i);
            if (et == BM_GGUF_STRING) {
                for (uint64_t j = 0; j < n; j++) {
                    bm_str s = bm_gguf_arr_str(g, i, j);
                    for (size_t q = 0; q < s.n; q++) h += (uint8_t)s.p[q];
                }
            } else {
                const uint8_t *d = bm_gguf_arr_data(g, i);
                for (uint64_t j = 0; j < n * ELEM[et]; j++) h += d[j];
            }
        }
        for (int64_t i = 0; i < bm_gguf_n_tensors(g); i++) {
            const bm_gguf_tensor *t = bm_gguf_tensor_at(g, i);
            const uint8_t *d = t->data;
            for (size_t j = 0; j < t->n_bytes; j++) h += d[j];
            char name[BM_TENSOR_NAME_MAX];
            memcpy(name, t->name.p, t->name.n);
            name[t->name.n] = 0;
            if (bm_gguf_tensor_find(g, name) != t) abort();
        }
        bm_gguf_close(g);
    } else if (!err.msg[0]) {
        abort(); /* every failure must explain itself */
    }
    free(p);
    return 0;
}
