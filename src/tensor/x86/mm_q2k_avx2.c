/* AVX2 instance of the Q2_K integer-dot kernel (template in mm_q2k.h): signed 8-bit activation
 * codes, products with vpmaddubsw and vpmaddwd (the 4-bit group scale and min ride in
 * vpmaddwd's multiplier). */
#define MMK_SUF avx2
#include "tensor/x86/mm_q2k.h"
