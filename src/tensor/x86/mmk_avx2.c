/* AVX2 instances of the integer-dot row kernels (Q8_0, Q4_0, Q5_0, Q4_1, Q5_1, K formats;
 * template in mmk.h): signed 8-bit activation codes, products with vpmaddubsw and vpmaddwd
 * (the 16-element integer scales of Q6_K/Q3_K ride in vpmaddwd's multiplier). */
#define MMK_SUF avx2
#include "tensor/x86/mmk.h"
