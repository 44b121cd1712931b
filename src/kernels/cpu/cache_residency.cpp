#include "kernels/cpu/cache_residency.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace bnorm::cpu {
#if defined(__x86_64__)
namespace {

// x86 has no instruction that asks where a line is, so this times loads. kSampleLines lines
// spread over the buffer are loaded together: their misses overlap, so the group costs about
// one DRAM latency when they come from DRAM and a few cache hits when they do not. Measured
// on the development machine (Zen 4 guest, TSC 2.6 GHz), 8 lines of a 0.8-6.4 MB buffer, TSC
// ticks, median (90th percentile): in cache 156-208 (182-416), flushed with clflush 520-600
// (750-830), evicted by 256 MB of other traffic (the benchmark's cold runs, TLB misses too)
// 570-3300 (910-4200). One line flushed with clflush: 390-440 (calibration below). How often
// the whole test judges right: sampled_residency below, and docs/benchmarks.md.
constexpr int kSampleLines = 8;

std::uint64_t fenced_ticks() {
  _mm_lfence();
  const std::uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

// Ticks to load one byte at each of lines[0..n), all issued before any is waited for.
std::uint64_t time_loads(const unsigned char* const* lines, int n) {
  const std::uint64_t start = fenced_ticks();
  unsigned sum = 0;
  for (int i = 0; i < n; ++i) sum += *static_cast<const volatile unsigned char*>(lines[i]);
  const std::uint64_t stop = fenced_ticks();
  asm volatile("" : : "r"(sum));
  return stop - start;
}

// The ticks of one load from DRAM (a line flushed with clflush; median of 9), which a group
// of sampled loads must reach to count as from DRAM; "never" when a flushed line does not
// load at least 3 times slower than a cached one (a hypervisor that traps rdtsc, say).
std::uint64_t dram_threshold() {
  static const std::uint64_t threshold = [] {
    alignas(64) static unsigned char line[64];
    constexpr int kTrials = 9;
    std::array<std::uint64_t, kTrials> miss{}, hit{};
    const unsigned char* one[] = {line};
    for (int t = 0; t < kTrials; ++t) {
      _mm_clflush(line);
      _mm_mfence();
      miss[t] = time_loads(one, 1);
      hit[t] = time_loads(one, 1);
    }
    std::nth_element(miss.begin(), miss.begin() + kTrials / 2, miss.end());
    std::nth_element(hit.begin(), hit.begin() + kTrials / 2, hit.end());
    const std::uint64_t m = miss[kTrials / 2], h = hit[kTrials / 2];
    return m >= 3 * h ? m : std::numeric_limits<std::uint64_t>::max();
  }();
  return threshold;
}

// Whether kSampleLines lines of [data, data + bytes) load at DRAM speed. Line i is in the
// i-th of kSampleLines equal parts, at an offset that grows by 3 pages and 3 lines from part
// to part: power-of-two strides would put every sample in one cache set and one TLB set
// (8 lines 512 KiB apart: 700 ticks in cache). `quarter` moves the samples by that many
// quarters of a part, so that each group of one call loads lines no other group has loaded.
bool sampled_lines_in_dram(const void* data, std::size_t bytes, int quarter) {
  const std::size_t part = bytes / kSampleLines;
  if (part < 64) return false;
  std::array<const unsigned char*, kSampleLines> lines{};
  for (int i = 0; i < kSampleLines; ++i) {
    const std::size_t step = static_cast<std::size_t>(i) * (3 * 4096 + 3 * 64);
    const std::size_t offset = (step + quarter * part / 4) % part;
    lines[i] = static_cast<const unsigned char*>(data) + i * part + offset / 64 * 64;
  }
  return time_loads(lines.data(), kSampleLines) >= dram_threshold();
}

}  // namespace

Residency sampled_residency(const void* input, const void* output, std::size_t bytes) {
  if (dram_threshold() == std::numeric_limits<std::uint64_t>::max()) return Residency::unknown;
  // The input first: in a network it is usually in cache (just written), and then one group
  // of loads decides. Two groups of input lines must agree on DRAM: one line out of cache
  // makes a group slow, and a hot tensor that has lost a few lines to other traffic must not
  // stream (the benchmark's hot runs, 1000-1700 calls: streamed calls 54 -> 13 on 256x64x8x8
  // channels_last backward, 477 -> 269 on 32x256x14x14 channels_last forward_train; cold
  // calls were all found in DRAM either way). Then the output, whatever the input's answer:
  // streaming pays only where it is in DRAM too (where it is in cache, normal stores read
  // nothing from DRAM; testing the output alone would not do: a streamed output is out of
  // cache at the next call, so every later call would stream too), and channels_last's row
  // groups only where it is in cache (with the input in cache and the output in DRAM they
  // took 1.07-2.1x the time: batchnorm_cpu_nhwc.hpp).
  const bool input_in_dram = sampled_lines_in_dram(input, bytes, 0) && sampled_lines_in_dram(input, bytes, 2);
  const bool output_in_dram = sampled_lines_in_dram(output, bytes, 1);
  if (input_in_dram && output_in_dram) return Residency::dram;
  if (!input_in_dram && !output_in_dram) return Residency::cache;
  return Residency::unknown;
}

#else

Residency sampled_residency(const void*, const void*, std::size_t) { return Residency::unknown; }

#endif
}  // namespace bnorm::cpu
