/* AVX2 kernels over packed Q4_0 / Q5_0 weights (template in mmp256.h): vpmaddubsw into int16
 * pair sums widened with vpmaddwd before they can saturate; no packed Q8_0 at this level. */
#define MMP_SUF avx2
#include "tensor/x86/mmp256.h"
