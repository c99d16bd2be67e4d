// Picks the kernel table once per process: the last table of tables.h whose
// features this CPU offers, unless EDGEOPT_ISA names another.
#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <string>

#include "../core/error.h"
#include "../core/kernels.h"
#include "cpu_features.h"

namespace edgeopt {
namespace {

struct Candidate {
  const char* name;
  const KernelTable& (*table)();
  const char* needs;  // cpu_feature_names() spelling, space-separated
};

// Ordered from slowest to fastest.
const Candidate kCandidates[] = {
    {"scalar", scalar_kernels, ""},
#define EDGEOPT_TABLE(name, needs) {#name, name##_kernels, needs},
#include "tables.h"
#undef EDGEOPT_TABLE
};

// The features of `c` this CPU lacks. The emulated test build runs every
// table in portable code (native/test/emulate), so it lacks nothing.
std::vector<std::string> missing_features(const Candidate& c) {
  std::vector<std::string> missing;
#ifndef EDGEOPT_EMULATE_X86
  static const std::vector<std::string> have = cpu_feature_names();
  std::istringstream needs(c.needs);
  for (std::string f; needs >> f;)
    if (std::find(have.begin(), have.end(), f) == have.end()) missing.push_back(f);
#else
  (void)c;
#endif
  return missing;
}

bool runnable(const Candidate& c) { return missing_features(c).empty(); }

std::string joined(const std::vector<std::string>& words, const char* sep) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : sep) + w;
  return out;
}

const KernelTable& choose() {
  const char* forced = std::getenv("EDGEOPT_ISA");
  if (forced && *forced) {
    std::vector<std::string> known;
    for (const Candidate& c : kCandidates) {
      if (forced == std::string(c.name)) {
        const std::vector<std::string> missing = missing_features(c);
        if (!missing.empty())
          throw Error("E_ISA", std::string("EDGEOPT_ISA=") + forced + " is not supported by this CPU (it lacks " +
                                   joined(missing, ", ") + ")");
        return c.table();
      }
      known.emplace_back(c.name);
    }
    throw Error("E_ISA", std::string("EDGEOPT_ISA=") + forced + " is unknown; this binary has " + joined(known, "|"));
  }
  const KernelTable* best = nullptr;
  for (const Candidate& c : kCandidates)
    if (runnable(c)) best = &c.table();
  return *best;
}

}  // namespace

const KernelTable& active_kernels() {
  static const KernelTable& table = choose();
  return table;
}

const KernelTable* find_kernels(const std::string& name) {
  for (const Candidate& c : kCandidates)
    if (name == c.name && runnable(c)) return &c.table();
  return nullptr;
}

std::vector<std::string> runnable_kernel_names() {
  std::vector<std::string> names;
  for (const Candidate& c : kCandidates)
    if (runnable(c)) names.emplace_back(c.name);
  return names;
}

std::vector<KernelTableInfo> kernel_tables() {
  std::vector<KernelTableInfo> out;
  for (const Candidate& c : kCandidates) out.push_back({c.name, missing_features(c)});
  return out;
}

std::vector<std::string> kernel_notes() { return cpu_features().notes; }

}  // namespace edgeopt
