#!/usr/bin/env bash
# AArch64 kernels on an x86 machine: cross-compiles the tensor layer (src/tensor/*.c, ops/,
# arm/, through the Makefile's rule and per-file flags: *_dotprod.c with
# -march=armv8.2-a+dotprod) and the few src/base/ files it needs, links them statically with
# tests/arm/test_neon_kernels.c, and runs it under qemu-aarch64: the default CPU (max: has
# dotprod) checks both levels (matmul kernels of every quantized type, attention, helpers);
# cortex-a53 (no dotprod) checks that detection falls back to neon and runs the neon level's
# checks there; BM_KERNELS=neon caps the level in use.
# Skips (exit 0) only when aarch64-linux-gnu-gcc or qemu-aarch64 is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
CC=${AARCH64_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU_AARCH64:-qemu-aarch64}
if ! command -v "$CC" >/dev/null || ! command -v "$QEMU" >/dev/null; then
    echo "skipped: no aarch64 cross compiler/qemu ($CC, $QEMU;" \
        "apt-get install gcc-aarch64-linux-gnu qemu-user)"
    exit 0
fi
out=${BAIMO_BUILD:-build}/arm64
[[ $out = /* ]] || out=$PWD/$out
srcs=(src/tensor/*.c src/tensor/ops/*.c src/tensor/arm/*.c src/base/*.c
      tests/arm/test_neon_kernels.c)
objs=("${srcs[@]/#/$out/obj/}")
objs=("${objs[@]/%.c/.o}")
# The test's own object is not among the Makefile's dependency files: always rebuilt.
rm -f "$out/obj/tests/arm/test_neon_kernels.o"
# The objects through the Makefile's own rule (its per-file ISA flags, -MMD header tracking);
# no pkg-config packages: the host's would point at x86-64 headers, and this subset needs none.
make --no-print-directory -s -j2 CC="$CC" BUILD="$out" PKGS= MPI_DEF= CFLAGS=-Werror \
    "${objs[@]}"
$CC -static -o "$out/test_neon_kernels" "${objs[@]}" -lm -pthread
bin=$out/test_neon_kernels

fail=0
echo "== qemu-aarch64 (cpu max: neon + dotprod)"
"$QEMU" "$bin" --expect-max dotprod || fail=1
echo "== qemu-aarch64 -cpu cortex-a53 (no dotprod: detection must fall back to neon)"
"$QEMU" -cpu cortex-a53 "$bin" --expect-max neon --expect-current neon || fail=1
echo "== BM_KERNELS=neon on cpu max"
BM_KERNELS=neon "$QEMU" "$bin" --expect-max dotprod --expect-current neon --levels-only || fail=1
echo "== BM_KERNELS=ref on cpu max"
BM_KERNELS=ref "$QEMU" "$bin" --expect-current ref --levels-only || fail=1
exit $fail
