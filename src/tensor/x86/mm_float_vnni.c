/* The 512-bit float-weight kernels (F32, F16, BF16; template in mm_float512.h) for the vnni
 * level. */
#define MMF_SUF vnni
#include "tensor/x86/mm_float512.h"
