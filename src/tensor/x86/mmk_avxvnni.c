/* AVX-VNNI (VEX-encoded 256-bit vpdpbusd, no AVX-512) instances of the integer-dot row kernels
 * (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, K formats; template in mmk.h): the vnni level's 256-bit
 * kernels (mmk_vnni.c) with the VEX encoding, for Alder Lake and later client cores. */
#define BM_DOT_AVXVNNI 1
#define MMK_VNNI 1
#define MMK_SUF avxvnni
#include "tensor/x86/mmk.h"
