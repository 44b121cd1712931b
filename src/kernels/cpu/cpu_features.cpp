#include "kernels/cpu/cpu_features.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace bnorm::cpu {
namespace {

// "32768K" -> 33554432; 0 when unreadable.
std::int64_t parse_cache_size(const char* text) {
  long long n = 0;
  char unit = 0;
  if (std::sscanf(text, "%lld%c", &n, &unit) < 1 || n <= 0) return 0;
  if (unit == 'K' || unit == 'k') return n << 10;
  if (unit == 'M' || unit == 'm') return n << 20;
  return n;
}

// The L3 that cpu0 shares, from sysfs: the cache index* whose level is 3. 0 when unknown.
// sysfs comes first because on AMD parts glibc's sysconf(_SC_LEVEL3_CACHE_SIZE) reports the
// L3 of the whole package (320 MiB on the development machine), not the slice one core
// shares (32 MiB).
std::int64_t l3_from_sysfs() {
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index);
    int level = 0;
    char size[32] = {};
    std::FILE* level_file = std::fopen((dir + "/level").c_str(), "r");
    if (!level_file) break;
    const bool have_level = std::fscanf(level_file, "%d", &level) == 1;
    std::fclose(level_file);
    if (!have_level || level != 3) continue;
    std::FILE* size_file = std::fopen((dir + "/size").c_str(), "r");
    if (!size_file) return 0;
    const bool have_size = std::fscanf(size_file, "%31s", size) == 1;
    std::fclose(size_file);
    return have_size ? parse_cache_size(size) : 0;
  }
  return 0;
}

std::int64_t read_l3_bytes() {
  if (const std::int64_t bytes = l3_from_sysfs()) return bytes;
  return std::max<long>(sysconf(_SC_LEVEL3_CACHE_SIZE), 0);
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
