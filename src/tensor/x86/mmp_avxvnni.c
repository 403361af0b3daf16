/* AVX-VNNI kernels over packed Q8_0 / Q4_0 / Q5_0 weights (template in mmp256.h): VEX-encoded
 * 256-bit vpdpbusd straight into int32 lanes, for Alder Lake and later client cores. */
#define BM_DOT_AVXVNNI 1
#define MMP_DPBUSD 1
#define MMP_SUF avxvnni
#include "tensor/x86/mmp256.h"
