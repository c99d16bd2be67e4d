// Magnitude pruning: which weights to zero.
#pragma once
#include <cstddef>
#include <cstdint>

namespace edgeopt {

// Marks exactly `prune_count` weights for removal: those with the smallest |w|,
// ties broken by the lower index (so the result is deterministic and identical
// on every backend). keep[i] = 0 for a pruned weight, 1 otherwise. O(n) worst
// case (radix selection). A NaN weight ranks above +inf: it is pruned last.
// Returns the largest pruned magnitude (the threshold), or 0 if nothing is pruned.
float magnitude_prune_mask(const float* w, size_t count, size_t prune_count, uint8_t* keep);

}  // namespace edgeopt
