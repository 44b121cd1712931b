// Run-time CPU feature detection (the binary is built for baseline x86-64).
#pragma once

#include <cstdint>

namespace bnorm::cpu {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  std::int64_t llc_bytes = 32 << 20;  // last-level cache (L3 of cpu0; 32 MiB if unknown)
};

const CpuFeatures& cpu_features();  // detected once

}  // namespace bnorm::cpu
