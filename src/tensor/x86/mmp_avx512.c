/* AVX-512 F/BW kernels (no VNNI: Skylake-SP/X/W, Cannon Lake) over packed Q8_0 / Q4_0 / Q5_0
 * weights: the vnni level's kernels (template in mmp512.h) with vpdpbusd emulated exactly by
 * vpmaddubsw + vpmaddwd (mmp.h, MMP_EMU; Q8_0 through signed codes), so every block's int32
 * sum and hence every output is bitwise the vnni level's. */
#define MMP_EMU 1
#define MMP_SUF avx512
#include "tensor/x86/mmp512.h"
