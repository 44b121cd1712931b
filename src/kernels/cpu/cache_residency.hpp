// Whether a kernel's data is in the caches or in DRAM, from timed loads. It decides the store
// policy (OutputStores::automatic), the statistics' software prefetch and channels_last's row
// groups (data_residency): the size of a tensor cannot tell whether the layer before has just
// written it (in cache) or it has waited in DRAM, and what pays differs.
#pragma once

#include <cstddef>

namespace bnorm::cpu {

// Where a kernel's data is. unknown: not timed (small calls), the input and the output in
// different places, or a machine where loads cannot be timed.
enum class Residency { cache, dram, unknown };

// From timed loads of sampled lines of `input` and `output` (each `bytes` long; they may be
// the same buffer): dram where two groups of input lines and one of output lines all load at
// DRAM speed, cache where the input's first group and the output's load at cache speed, else
// unknown. Costs two groups' time where both are in cache (about 0.2 us), three DRAM
// latencies where both are in DRAM. x86-64 only; elsewhere, or where the time stamp counter
// cannot tell a cache hit from a miss, unknown.
Residency sampled_residency(const void* input, const void* output, std::size_t bytes);

}  // namespace bnorm::cpu
