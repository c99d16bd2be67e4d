// Shared by the AVX2 files (avx2.cc, avx2_u8s8.cc, sparse_avx2.cc).
//
// Every file here is compiled for the baseline x86-64 ISA; only functions
// marked EDGEOPT_AVX2 may use AVX2/FMA, so the binary still loads on a CPU
// without them and dispatch.cc calls this table only after cpuid (and xgetbv)
// said yes. No `#pragma GCC target` over a whole file: inline functions from
// the headers would then get AVX2 copies the linker could hand to baseline
// callers.
#pragma once
#if defined(__x86_64__) || defined(_M_X64)
#include "../core/kernels.h"

#define EDGEOPT_AVX2 __attribute__((target("avx2,fma")))
// The accumulator arrays of the microkernels must become registers: fully
// unroll their loops, and compile each microkernel on its own (inlined into
// the loop nest, GCC spills the accumulators).
#define EDGEOPT_UNROLL _Pragma("GCC unroll 16")
#define EDGEOPT_MICROKERNEL __attribute__((target("avx2,fma"), noinline))

namespace edgeopt {
namespace avx2 {

// int8 GEMM (avx2_u8s8.cc): packs into whichever exact layout is faster for
// these weights (PackedS8::layout), and runs it.
void pack_s8(const int8_t* w, int n, int k, PackedS8* out);
void gemm_u8s8(const GemmU8S8Args& args);
// RequantizeS8Args's loop, 8 channels a step (requantize_avx2.cc).
void requantize_s8(const RequantizeS8Args& args);

}  // namespace avx2
}  // namespace edgeopt
#endif
