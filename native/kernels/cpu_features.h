// What the CPU can do *and* the OS lets us use (x86: cpuid + xgetbv; arm64: hwcaps).
#pragma once
#include <string>
#include <vector>

namespace edgeopt {

struct CpuFeatures {
  bool avx2 = false, fma = false;  // AVX2 + FMA3, YMM state enabled by the OS
  bool avx512f = false, avx512bw = false, avx512vl = false;
  bool avx512vnni = false;                  // ZMM + opmask state enabled by the OS
  bool avx512vbmi = false;                  // byte permutes (vpermi2b); no table needs it
  bool avxvnni = false;                     // VEX-encoded vpdpbusd
  bool amx_tile = false, amx_int8 = false;  // and the OS granted this process the tile state
  bool neon = false, dotprod = false, i8mm = false;
  // What the OS refused that the CPU has, for backendInfo() (kernel_notes()).
  std::vector<std::string> notes;
};

const CpuFeatures& cpu_features();

// Feature names for backendInfo().isa, e.g. {"avx2", "fma", "avx512vnni"}.
std::vector<std::string> cpu_feature_names();

}  // namespace edgeopt
