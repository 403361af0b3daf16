/* Test harness for tests/ref/test_quant.py: converts between raw dtype bytes and float32
 * through the library's traits table (bm_type_traits_get(t)->to_f32 / from_f32).
 *   quant_tool deq   <type> <in.raw> <out.f32>   dequantize whole blocks
 *   quant_tool quant <type> <in.f32> <out.raw>   reference-quantize (n a multiple of block)
 * <type> is a dtype name ("q4_K", "f16", "bf16"...). Exit status 2 on bad input. */
#include "baimo/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *len = n;
    return buf;
}

static int write_all(const char *path, const void *p, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(p, 1, len, f);
    return fclose(f) == 0 && w == len ? 0 : -1;
}

int main(int argc, char **argv) {
    bm_dtype t;
    if (argc != 5 || !bm_dtype_parse(argv[2], &t)) {
        fprintf(stderr, "usage: quant_tool deq|quant <type> <in> <out>\n");
        return 2;
    }
    const bm_type_traits *tt = bm_type_traits_get((int)t);
    if (!tt->to_f32) {
        fprintf(stderr, "quant_tool: type %s has no converter\n", tt->name);
        return 2;
    }
    size_t len;
    unsigned char *in = read_all(argv[3], &len);
    if (!in) {
        fprintf(stderr, "quant_tool: cannot read %s\n", argv[3]);
        return 2;
    }
    int rc = 0;
    if (!strcmp(argv[1], "deq")) {
        if (len % tt->block_bytes) {
            fprintf(stderr, "quant_tool: %zu bytes is not whole %s blocks of %zu\n", len, tt->name,
                    tt->block_bytes);
            rc = 2;
        } else {
            int64_t n = (int64_t)(len / tt->block_bytes) * tt->block_elems;
            float *y = malloc((size_t)n * sizeof(float) + 1);
            tt->to_f32(in, y, n);
            rc = write_all(argv[4], y, (size_t)n * sizeof(float));
            free(y);
        }
    } else if (!strcmp(argv[1], "quant")) {
        int64_t n = (int64_t)(len / sizeof(float));
        size_t rb;
        if (len % sizeof(float) || !bm_row_bytes(t, n, &rb)) {
            fprintf(stderr, "quant_tool: %zu bytes is not whole %s blocks of %d floats\n", len,
                    tt->name, tt->block_elems);
            rc = 2;
        } else {
            float *x = malloc(len + 1);
            memcpy(x, in, len);
            unsigned char *out = malloc(rb + 1);
            tt->from_f32(x, out, n);
            rc = write_all(argv[4], out, rb);
            free(x);
            free(out);
        }
    } else {
        fprintf(stderr, "quant_tool: unknown mode %s (deq|quant)\n", argv[1]);
        rc = 2;
    }
    free(in);
    if (rc < 0) fprintf(stderr, "quant_tool: cannot write %s\n", argv[4]);
    return rc ? 2 : 0;
}
