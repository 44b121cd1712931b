// Run-time CPU feature detection (the binary is built for baseline x86-64).
#pragma once

#include <cstdint>

namespace bnorm::cpu {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  // Last-level cache: the L3 cpu0 shares (sysfs, else sysconf), 32 MiB if unknown. Used by
  // the kernels' store and prefetch policies and by the benchmark's cold-data rotation.
  std::int64_t llc_bytes = 32 << 20;
};

const CpuFeatures& cpu_features();  // detected once

}  // namespace bnorm::cpu
