/* Test twin of mmpk_avxvnni.c: the same packed Q4_K / Q5_K / Q6_K source (mmpk256.h) built with
 * the EVEX encoding of 256-bit vpdpbusd (AVX512VL + AVX512_VNNI), so the avxvnni kernels are
 * tested and measured on CPUs without AVX-VNNI. Only the test-only table BM_LVL_AVXVNNI_EVEX
 * uses these. */
#define MMP_DPBUSD 1
#define MMP_SUF vnni256
#include "tensor/x86/mmpk256.h"
