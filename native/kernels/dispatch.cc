// Picks the kernel table once per process. Each ISA file adds one entry to
// kCandidates with the features it needs; the last runnable entry wins unless
// EDGEOPT_ISA names another.
#include <cstdlib>
#include <string>

#include "../core/error.h"
#include "../core/kernels.h"
#include "cpu_features.h"

namespace edgeopt {
namespace {

struct Candidate {
  const char* name;
  const KernelTable& (*table)();
  bool (*runnable)(const CpuFeatures&);
};

// Ordered from slowest to fastest.
const Candidate kCandidates[] = {
    {"scalar", scalar_kernels, [](const CpuFeatures&) { return true; }},
#if defined(__x86_64__) || defined(_M_X64)
    {"avx2", avx2_kernels, [](const CpuFeatures& f) { return f.avx2 && f.fma; }},
#endif
#if defined(__aarch64__)
    {"neon", neon_kernels, [](const CpuFeatures& f) { return f.neon; }},
    {"dotprod", dotprod_kernels, [](const CpuFeatures& f) { return f.neon && f.dotprod; }},
    {"i8mm", i8mm_kernels, [](const CpuFeatures& f) { return f.neon && f.i8mm; }},
#endif
};

const KernelTable& choose() {
  const CpuFeatures& f = cpu_features();
  const char* forced = std::getenv("EDGEOPT_ISA");
  if (forced && *forced) {
    std::string known;
    for (const Candidate& c : kCandidates) {
      if (forced == std::string(c.name)) {
        if (!c.runnable(f))
          throw Error("E_ISA", std::string("EDGEOPT_ISA=") + forced + " is not supported by this CPU");
        return c.table();
      }
      known += known.empty() ? c.name : std::string("|") + c.name;
    }
    throw Error("E_ISA", std::string("EDGEOPT_ISA=") + forced + " is unknown; this binary has " + known);
  }
  const KernelTable* best = nullptr;
  for (const Candidate& c : kCandidates)
    if (c.runnable(f)) best = &c.table();
  return *best;
}

}  // namespace

const KernelTable& active_kernels() {
  static const KernelTable& table = choose();
  return table;
}

const KernelTable* find_kernels(const std::string& name) {
  for (const Candidate& c : kCandidates)
    if (name == c.name && c.runnable(cpu_features())) return &c.table();
  return nullptr;
}

std::vector<std::string> runnable_kernel_names() {
  std::vector<std::string> names;
  for (const Candidate& c : kCandidates)
    if (c.runnable(cpu_features())) names.emplace_back(c.name);
  return names;
}

}  // namespace edgeopt
