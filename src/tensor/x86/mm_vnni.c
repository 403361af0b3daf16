/* AVX-512 VNNI peak probes (benchmarks; template in probe512.h). The 256-bit VNNI integer-dot
 * kernels of the block formats are in mmk.h, built for this level by mmk_vnni.c. */
#define PROBE_SUF vnni
#define PROBE_DOT(acc, u, s) _mm512_dpbusd_epi32((acc), (u), (s))
#include "tensor/x86/probe512.h"
