/* AVX2 kernels over packed Q4_K / Q5_K / Q6_K weights (template in mmpk256.h): vpmaddubsw into
 * int16 pair sums widened with vpmaddwd before they can saturate. */
#define MMP_SUF avx2
#include "tensor/x86/mmpk256.h"
