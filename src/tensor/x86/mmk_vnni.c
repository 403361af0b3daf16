/* AVX-512 VNNI (256-bit EVEX encoding, AVX512VL) instances of the integer-dot row kernels
 * (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, K formats; template in mmk.h): activation codes + 128, one
 * vpdpbusd per token and 32-block on top of a -128 * sum(w) correction shared by the token
 * tile; Q6_K/Q3_K scale the int32 lanes with vpmulld. Also the tested twin of the avxvnni
 * level's kernels (mmk_avxvnni.c): the same source, only the instruction encoding differs. */
#define MMK_VNNI 1
#define MMK_SUF vnni
#include "tensor/x86/mmk.h"
