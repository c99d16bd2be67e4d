// How an x86 ISA file gets its intrinsics and compiles for its ISA while the
// binary still loads on any x86-64 CPU.
//
// Every file is compiled for the baseline x86-64 (no -march flags). An ISA
// file's kernels sit between EDGEOPT_TARGET_BEGIN("avx2,fma") and
// EDGEOPT_TARGET_END, a `#pragma GCC target` region, and dispatch.cc calls
// them only after cpuid (and xgetbv) said yes. Three rules keep AVX code away
// from baseline callers:
//   - every header (std, core, row_blocks.h, x86.h) is included before the
//     region: an inline function first defined inside it would get an AVX copy
//     the linker could hand to baseline code;
//   - what a region defines has internal linkage (anonymous namespace), except
//     the entry points x86.h declares for other tables, which only those
//     tables call;
//   - the table getter, which baseline code calls, is defined after the region.
// scripts/native-test.js checks the objects: per file, only the instruction
// classes its ISA allows, and none in a getter.
//
// The emulated build (EDGEOPT_EMULATE_X86: the test-only binary that
// `npm run test:native` builds from the same sources) compiles the regions
// for the baseline against portable intrinsics (SIMDe, plus an emulation of
// the AMX tiles), so a CPU without an ISA still tests its kernels bit for bit.
#pragma once
#if defined(EDGEOPT_EMULATE_X86)
#include "../test/emulate/x86_intrinsics.h"
#define EDGEOPT_TARGET_BEGIN(isa)
#define EDGEOPT_TARGET_END
#else
// GCC 12 warns about _mm512_undefined_ps() inside AVX-512 intrinsics (GCC bug
// 105593, fixed in 13); the warning's location is the intrinsic header.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#define EDGEOPT_PRAGMA(x) _Pragma(#x)
#define EDGEOPT_TARGET_BEGIN(isa) EDGEOPT_PRAGMA(GCC push_options) EDGEOPT_PRAGMA(GCC target(isa))
#define EDGEOPT_TARGET_END EDGEOPT_PRAGMA(GCC pop_options)
#endif

// The microkernels' accumulator arrays must become registers: fully unroll
// the loops over them, and compile each microkernel on its own (inlined into
// the loop nest, GCC spills the accumulators). Emulated, registers do not
// matter, and unrolled portable code takes GCC many minutes under ASan.
#if defined(EDGEOPT_EMULATE_X86)
#define EDGEOPT_UNROLL
#else
#define EDGEOPT_UNROLL _Pragma("GCC unroll 16")
#endif
#define EDGEOPT_MICROKERNEL __attribute__((noinline))

// The ISA strings of the tables (GCC target names).
#define EDGEOPT_ISA_AVX2 "avx2,fma"
#define EDGEOPT_ISA_AVXVNNI "avx2,fma,avxvnni"
#define EDGEOPT_ISA_AVX512 "avx2,fma,avx512f,avx512bw,avx512vl"
// Not a table: the AVX-512 table's byte lookup where the CPU also has VBMI.
#define EDGEOPT_ISA_AVX512VBMI "avx2,fma,avx512f,avx512bw,avx512vl,avx512vbmi"
#define EDGEOPT_ISA_AVX512VNNI "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"
#define EDGEOPT_ISA_AMX "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-int8"
