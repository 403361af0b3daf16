/* AVX-512 VNNI (256-bit AVX512VL encoding) instances of the Q4_1/Q5_1/K-format integer-dot
 * kernels (template in mmk.h): activation codes + 128, one vpdpbusd per token and 32-block on
 * top of a -128 * sum(w) correction shared by the token tile; Q6_K/Q3_K scale the int32 lanes
 * with vpmulld. */
#define MMK_VNNI 1
#define MMK_SUF vnni
#include "tensor/x86/mmk.h"
