// The AVX2 int8 requantization (requantize_avx2.cc), set in the avx2 table and
// inherited by the x86 tables built on it.
#pragma once
#if defined(__x86_64__) || defined(_M_X64)
#include "../core/kernels.h"

namespace edgeopt {
namespace avx2 {

// RequantizeS8Args's loop, 8 channels a step, exact.
void requantize_s8(const RequantizeS8Args& args);

}  // namespace avx2
}  // namespace edgeopt
#endif
