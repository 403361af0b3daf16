/* .npy writer: NumPy format version 1.0 (magic "\x93NUMPY", version 1.0, u16 LE header length,
 * a Python dict literal padded with spaces and ended by '\n' so that the data starts at a
 * multiple of 64 bytes), little-endian f32 in C order. Used to hand arrays to numpy-based
 * reference tests. Spec: numpy.lib.format. Writes to "<path>.tmp" and renames. */
#include "baimo/safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

bm_status bm_npy_write_f32(const char *path, const float *data, int n_dims, const int64_t *shape,
                           bm_err *err) {
    if (n_dims < 0 || n_dims > 32)
        return bm_err_set(err, BM_EINVAL, "npy: %d dimensions (must be 0..32)", n_dims);
    char dims[32 * 24 + 8] = "";
    size_t dl = 0, count = 1;
    for (int i = 0; i < n_dims; i++) {
        if (shape[i] < 0)
            return bm_err_set(err, BM_EINVAL, "npy: dimension %d is %lld (must be >= 0)", i,
                              (long long)shape[i]);
        if (!bm_size_mul(count, (size_t)shape[i], &count))
            return bm_err_set(err, BM_EOVERFLOW, "npy: element count overflows");
        dl += (size_t)snprintf(dims + dl, sizeof dims - dl, "%lld,%s", (long long)shape[i],
                               i + 1 < n_dims ? " " : "");
    }
    if (n_dims > 1) dims[--dl] = 0; /* (a, b) ; a 1-tuple keeps its comma: (a,) */
    size_t bytes;
    if (!bm_size_mul(count, 4, &bytes)) return bm_err_set(err, BM_EOVERFLOW, "npy: size overflows");
    char hdr[1024];
    int hl = snprintf(hdr + 10, sizeof hdr - 10,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    size_t total = 10 + (size_t)hl + 1; /* + '\n' */
    size_t padded = (total + 63) / 64 * 64;
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    size_t hlen = padded - 10;
    hdr[8] = (char)(hlen & 0xFF);
    hdr[9] = (char)(hlen >> 8);
    memset(hdr + 10 + hl, ' ', padded - total);
    hdr[padded - 1] = '\n';

    size_t pl = strlen(path);
    char tmp[4096];
    if (pl + 5 > sizeof tmp) return bm_err_set(err, BM_EINVAL, "npy: path too long");
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) return bm_err_set(err, BM_EIO, "npy: cannot create '%s': %s", tmp, strerror(errno));
    bool ok = fwrite(hdr, 1, padded, f) == padded && (bytes == 0 || fwrite(data, 1, bytes, f) == bytes);
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok || rename(tmp, path) != 0) {
        if (ok) e = errno;
        unlink(tmp);
        return bm_err_set(err, BM_EIO, "npy: cannot write '%s': %s", path, strerror(e ? e : EIO));
    }
    return BM_OK;
}
