/* AVX-VNNI kernels over packed Q4_K / Q5_K / Q6_K weights (template in mmpk256.h): VEX-encoded
 * 256-bit vpdpbusd straight into int32 lanes, for Alder Lake and later client cores. */
#define BM_DOT_AVXVNNI 1
#define MMP_DPBUSD 1
#define MMP_SUF avxvnni
#include "tensor/x86/mmpk256.h"
