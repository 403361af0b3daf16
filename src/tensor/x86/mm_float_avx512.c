/* The 512-bit float-weight kernels (F32, F16, BF16; template in mm_float512.h) for the avx512
 * level: the vnni level's source (AVX-512F only) built with the AVX-512 F/BW/VL/DQ flags. */
#define MMF_SUF avx512
#include "tensor/x86/mm_float512.h"
