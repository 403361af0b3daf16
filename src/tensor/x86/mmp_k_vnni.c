/* AVX-512 VNNI kernels over packed Q4_K / Q5_K / Q6_K weights (template in mmpk512.h): 512-bit
 * vpdpbusd with the activation broadcast folded in. */
#define MMP_SUF vnni
#include "tensor/x86/mmpk512.h"
