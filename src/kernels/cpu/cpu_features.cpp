#include "kernels/cpu/cpu_features.hpp"

#include <cstdio>

namespace bnorm::cpu {
namespace {

// Size of cpu0's L3 from sysfs ("32768K"), or 0 when it cannot be read.
std::int64_t read_l3_bytes() {
  std::FILE* f = std::fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r");
  if (!f) return 0;
  long long n = 0;
  char unit = 0;
  const int got = std::fscanf(f, "%lld%c", &n, &unit);
  std::fclose(f);
  if (got < 1 || n <= 0) return 0;
  if (unit == 'K' || unit == 'k') return n << 10;
  if (unit == 'M' || unit == 'm') return n << 20;
  return n;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
#endif
    if (const std::int64_t l3 = read_l3_bytes(); l3 > 0) f.llc_bytes = l3;
    return f;
  }();
  return features;
}

}  // namespace bnorm::cpu
