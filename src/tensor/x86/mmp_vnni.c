/* AVX-512 VNNI kernels over packed Q8_0 / Q4_0 / Q5_0 weights (template in mmp512.h): 512-bit
 * vpdpbusd with the activation broadcast folded in. */
#define MMP_SUF vnni
#include "tensor/x86/mmp512.h"
