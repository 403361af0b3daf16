#!/usr/bin/env bash
# AArch64 kernels on an x86 machine: cross-compiles the tensor layer (src/tensor/*.c, ops/,
# arm/ with the Makefile's per-file flags: *_dotprod.c with -march=armv8.2-a+dotprod) and the
# few src/base/ files it needs, statically, with tests/arm/test_neon_kernels.c, and runs it
# under qemu-aarch64: the default CPU (max: has dotprod) checks both levels; cortex-a53 (no
# dotprod) checks that detection falls back to neon; BM_KERNELS=neon caps the level in use.
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
mkdir -p "$out/obj"
CFLAGS="-std=c11 -O2 -Wall -Wextra -Wno-unused-parameter -Wshadow -Werror -D_GNU_SOURCE -pthread
  -Iinclude -Isrc"
srcs=(src/tensor/*.c src/tensor/ops/*.c src/tensor/arm/*.c src/base/*.c
      tests/arm/test_neon_kernels.c)
hdrs=(include/baimo/*.h src/tensor/*.h src/tensor/arm/*.h)
compile() { # src -> obj (rebuilt when the source or any header is newer)
    local s=$1 o=$out/obj/$(echo "${1%.c}" | tr / _).o flags=
    case $s in *_dotprod.c) flags="-march=armv8.2-a+dotprod" ;; esac
    if [ -e "$o" ] && [ "$o" -nt "$s" ]; then
        local stale=0 h
        for h in "${hdrs[@]}"; do [ "$h" -nt "$o" ] && stale=1; done
        [ $stale = 0 ] && return 0
    fi
    $CC $CFLAGS $flags -c "$s" -o "$o"
}
export -f compile; export CC CFLAGS out; export hdrs_list="${hdrs[*]}"
printf '%s\n' "${srcs[@]}" | xargs -P 2 -I{} bash -c 'hdrs=($hdrs_list); compile "$@"' _ {}
objs=()
for s in "${srcs[@]}"; do objs+=("$out/obj/$(echo "${s%.c}" | tr / _).o"); done
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
