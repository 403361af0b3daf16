/* AVX-512 F/BW kernels (no VNNI) over packed Q4_K / Q5_K / Q6_K weights: the vnni level's
 * kernels (template in mmpk512.h) with vpdpbusd emulated exactly by vpmaddubsw + vpmaddwd
 * (mmp.h, MMP_EMU), bitwise the vnni level's results; decode (one token) runs the same 256-bit
 * AVX2 kernels as the vnni level. */
#define MMP_EMU 1
#define MMP_SUF avx512
#include "tensor/x86/mmpk512.h"
