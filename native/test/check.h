// The native tests' assertion: counts failures and keeps going, so one run
// reports every mismatch; main() returns non-zero when any CHECK failed.
#pragma once
#include <cstdio>

namespace edgeopt::test {
inline int failures = 0;
}

#define CHECK(cond, ...)                                        \
  do {                                                          \
    if (!(cond)) {                                              \
      ++edgeopt::test::failures;                                \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);                        \
      std::fprintf(stderr, "\n");                               \
    }                                                           \
  } while (0)
