# Independent numpy model of one TDPBF16PS (Intel SDM pseudocode) for tests/unit/test_amx.c:
# reads a file of A (16 x 32 bf16), B (16 x 32 bf16: 16 pair rows x 16 columns x 2), C0 (16 x 16
# f32) and the emulator's C (16 x 16 f32), all little endian, and exits 0 when C equals, bit for
# bit, the SDM definition computed here in float32: per row two chains (even and odd pair
# elements) from 0, each step temp += a * b with DAZ and FTZ (a product of two bf16 is exact in
# float32 for the exponents used, so product-then-add is the FMA), then C0 + (even + odd).
# Usage: amx_bf16_np.py FILE
import sys

import numpy as np

TINY = np.float32(np.finfo(np.float32).tiny)


def ftz(v):
    v = np.asarray(v, dtype=np.float32)
    return np.where(np.abs(v) < TINY, np.copysign(np.float32(0), v), v).astype(np.float32)


def bf16(u16):
    return ftz((u16.astype(np.uint32) << 16).view(np.float32))


def main():
    raw = open(sys.argv[1], "rb").read()
    a = np.frombuffer(raw, dtype="<u2", count=16 * 32, offset=0).reshape(16, 32)
    b = np.frombuffer(raw, dtype="<u2", count=16 * 32, offset=1024).reshape(16, 16, 2)
    c0 = np.frombuffer(raw, dtype="<f4", count=256, offset=2048).reshape(16, 16)
    got = np.frombuffer(raw, dtype="<f4", count=256, offset=3072).reshape(16, 16)
    af, bf = bf16(a), bf16(b)
    with np.errstate(all="ignore"):
        temp = np.zeros((16, 16, 2), dtype=np.float32)  # [m, n, even/odd]
        for k in range(16):
            for j in range(2):
                prod = af[:, 2 * k + j][:, None] * bf[k, :, j][None, :]
                temp[:, :, j] = ftz(temp[:, :, j] + prod)
        want = ftz(ftz(c0) + ftz(temp[:, :, 0] + temp[:, :, 1]))
    bad = np.nonzero(want.view(np.uint32) != got.view(np.uint32))
    if bad[0].size:
        m, n = bad[0][0], bad[1][0]
        print(f"amx_bf16_np: {bad[0].size} of 256 differ, first m={m} n={n}: "
              f"numpy {want[m, n]!r} emulator {got[m, n]!r}")
        return 1
    print("amx_bf16_np: 256 of 256 equal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
