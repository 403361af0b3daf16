/* libFuzzer target for the safetensors reader: opens the input with bm_st_open_mem and reads
 * every tensor byte and name, so a view past the input is caught by ASan.
 * Seeds: tests/fuzz/seeds/safetensors/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "baimo/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *p = malloc(size ? size : 1);
    if (!p) return 0;
    memcpy(p, data, size);
    bm_st *s = NULL;
    bm_err err = {0};
    volatile unsigned h = 0;
    if (bm_st_open_mem(p, size, &s, &err) == BM_OK) {
        for (int64_t i = 0; i < bm_st_n_tensors(s); i++) {
            const bm_st_tensor *t = bm_st_tensor_at(s, i);
            const uint8_t *d = t->data;
            for (size_t j = 0; j < t->n_bytes; j++) h += d[j];
            if (bm_st_find(s, t->name) != t) abort();
        }
        bm_st_close(s);
    } else if (!err.msg[0]) {
        abort();
    }
    free(p);
    return 0;
}
