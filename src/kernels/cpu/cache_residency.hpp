// Whether a kernel's data is in the caches or in DRAM, from timed loads. It decides the store
// policy (OutputStores::automatic) and channels_last's software prefetch (data_residency): the
// size of a tensor cannot tell whether the layer before has just written it (in cache) or it
// has waited in DRAM, and what pays differs.
#pragma once

#include <cstddef>

namespace bnorm::cpu {

// True when two groups of sampled lines of `input`, then one of `output` (each `bytes` long;
// they may be the same buffer), all load at DRAM speed. Costs one group's time where the
// input is in cache (about 0.1 us), three DRAM latencies where all are in DRAM. x86-64 only;
// elsewhere, or where the time stamp counter cannot tell a cache hit from a miss, false.
bool input_and_output_in_dram(const void* input, const void* output, std::size_t bytes);

}  // namespace bnorm::cpu
