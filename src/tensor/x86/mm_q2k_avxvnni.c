/* AVX-VNNI (VEX-encoded 256-bit vpdpbusd, no AVX-512) instance of the Q2_K integer-dot kernel
 * (template in mm_q2k.h): the vnni level's kernel (mm_q2k_vnni.c) with the VEX encoding. */
#define BM_DOT_AVXVNNI 1
#define MMK_VNNI 1
#define MMK_SUF avxvnni
#include "tensor/x86/mm_q2k.h"
