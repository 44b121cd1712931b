// Run-time CPU feature detection (the binary is built for baseline x86-64).
#pragma once

namespace bnorm::cpu {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
};

const CpuFeatures& cpu_features();  // detected once

}  // namespace bnorm::cpu
