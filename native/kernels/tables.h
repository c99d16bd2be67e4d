// The one list of SIMD kernel tables, slowest first; scalar_kernels() comes
// before them all and runs everywhere. A new ISA is its own file plus one line
// here: EDGEOPT_TABLE(name, needs) declares name##_kernels() (kernels.h) and
// makes it a candidate of dispatch.cc, runnable when the CPU (and OS) offers
// every feature in `needs`, spelled as cpu_feature_names() spells them.
//
// No include guard: kernels.h and dispatch.cc include it with their own
// EDGEOPT_TABLE.
#if defined(__x86_64__) || defined(_M_X64)
EDGEOPT_TABLE(avx2, "avx2 fma")
EDGEOPT_TABLE(avx512, "avx2 fma avx512f avx512bw avx512vl")
EDGEOPT_TABLE(avxvnni, "avx2 fma avxvnni")
EDGEOPT_TABLE(avx512vnni, "avx2 fma avx512f avx512bw avx512vl avx512vnni")
EDGEOPT_TABLE(amx, "avx2 fma avx512f avx512bw avx512vl avx512vnni amx-tile amx-int8")
#endif
#if defined(__aarch64__)
EDGEOPT_TABLE(neon, "neon")
EDGEOPT_TABLE(dotprod, "neon dotprod")
EDGEOPT_TABLE(i8mm, "neon i8mm")
#endif
