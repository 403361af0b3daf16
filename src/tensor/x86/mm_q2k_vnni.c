/* AVX-512 VNNI (256-bit AVX512VL encoding) instance of the Q2_K integer-dot kernel (template
 * in mm_q2k.h): activation codes + 128 flipped back to signed once per block and token, then
 * one vpdpbusd each for the scaled codes and for the mins. */
#define MMK_VNNI 1
#define MMK_SUF vnni
#include "tensor/x86/mm_q2k.h"
