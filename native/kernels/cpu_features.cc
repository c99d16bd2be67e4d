#include "cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>

#include <cstdint>
#include <cstring>
#define EDGEOPT_X86 1
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#endif
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#define EDGEOPT_ARM64_LINUX 1
#endif

namespace edgeopt {
namespace {

#ifdef EDGEOPT_X86
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// AMX tiles need the OS twice: XCR0 must enable the tile state (bits 17, 18),
// and Linux gives it to a process only when asked (kernel 5.16+), once.
void grant_amx(uint64_t xcr0, CpuFeatures* f) {
  const char* refusal = nullptr;
  if ((xcr0 & 0x60000) != 0x60000) refusal = "the OS does not enable the tile state (XCR0)";
#if defined(__linux__)
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (!refusal && syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) != 0) refusal = std::strerror(errno);
#endif
  if (refusal) {
    f->notes.push_back(std::string("amx: the CPU has AMX-INT8 but it cannot be used (") + refusal +
                       "); the best other kernel table runs instead");
    return;
  }
  f->amx_tile = f->amx_int8 = true;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12);
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;                 // SSE + AVX
  const bool zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0;  // opmask + ZMM_Hi256 + Hi16_ZMM
  if (!ymm_state) return f;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = b & (1u << 5);
  f.fma = fma;
  if (zmm_state) {
    f.avx512f = b & (1u << 16);
    f.avx512bw = b & (1u << 30);
    f.avx512vl = b & (1u << 31);
    f.avx512vnni = f.avx512f && f.avx512bw && f.avx512vl && (c & (1u << 11));
    f.avx512vbmi = f.avx512f && f.avx512bw && f.avx512vl && (c & (1u << 1));
  }
  if ((d & (1u << 24)) && (d & (1u << 25))) grant_amx(xcr0, &f);
  unsigned a1, b1, c1, d1;
  __cpuid_count(7, 1, a1, b1, c1, d1);
  f.avxvnni = f.avx2 && (a1 & (1u << 4));
  return f;
}
#elif defined(EDGEOPT_ARM64_LINUX)
CpuFeatures detect() {
  CpuFeatures f;
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  f.neon = hw & (1ul << 1);      // HWCAP_ASIMD
  f.dotprod = hw & (1ul << 20);  // HWCAP_ASIMDDP
  f.i8mm = hw2 & (1ul << 13);    // HWCAP2_I8MM
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

std::vector<std::string> cpu_feature_names() {
  const CpuFeatures& f = cpu_features();
  std::vector<std::string> names;
  const std::pair<bool, const char*> all[] = {{f.avx2, "avx2"},
                                              {f.fma, "fma"},
                                              {f.avx512f, "avx512f"},
                                              {f.avx512bw, "avx512bw"},
                                              {f.avx512vl, "avx512vl"},
                                              {f.avx512vnni, "avx512vnni"},
                                              {f.avx512vbmi, "avx512vbmi"},
                                              {f.avxvnni, "avxvnni"},
                                              {f.amx_tile, "amx-tile"},
                                              {f.amx_int8, "amx-int8"},
                                              {f.neon, "neon"},
                                              {f.dotprod, "dotprod"},
                                              {f.i8mm, "i8mm"}};
  for (const auto& [has, name] : all)
    if (has) names.emplace_back(name);
  return names;
}

}  // namespace edgeopt
