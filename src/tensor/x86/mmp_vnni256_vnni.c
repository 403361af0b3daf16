/* Test twin of mmp_avxvnni.c: the same packed Q8_0 / Q4_0 / Q5_0 source (mmp256.h) built with
 * the EVEX encoding of 256-bit vpdpbusd (AVX512VL + AVX512_VNNI), so the avxvnni kernels are
 * tested and measured on CPUs that have AVX-512 VNNI but not AVX-VNNI (where the VEX form
 * faults). Only the test-only table BM_LVL_AVXVNNI_EVEX uses these. */
#define MMP_DPBUSD 1
#define MMP_SUF vnni256
#include "tensor/x86/mmp256.h"
