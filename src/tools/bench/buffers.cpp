// Benchmark memory: buffers and their deterministic contents.
#include "tools/bench/buffers.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

namespace bnorm::bench {
namespace {

// Counter-based random numbers (splitmix64): element i's value does not depend on the
// order of generation, so the fill runs in parallel and is the same for every run.
std::uint64_t mix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
// Uniform in [-1, 1).
double uniform(std::uint64_t key) { return static_cast<double>(mix(key) >> 11) * 0x1.0p-52 - 1.0; }

// Standard normal from two counter-based uniforms (Box-Muller).
double normal(std::uint64_t key) {
  const double u1 = 0.5 * (uniform(key) + 1.0), u2 = uniform(key + 1);
  return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(3.141592653589793 * u2);
}

// Per channel c: x = mu_c + sigma_c * z with z standard normal, mu_c in [-2, 2], sigma_c in
// [0.5, 2]: offsets large enough to punish a naive one-pass variance. Normal, not bounded
// (uniform): real activations have tails, and a kernel whose speed depends on the data
// (bnorm re-sums a channel whose pivot lands far from its mean) must be timed on tails.
// With uniform z no pivot was ever 2 std out, and a slowdown of 1.6-2.5x on normal data
// in channels_last went unseen. dy is correlated with x (0.25 z + noise + 0.1) so that
// dgamma and dbeta are well-conditioned sums and a 1e-4 relative bound tests the kernel,
// not cancellation luck.
void fill_inputs(const Workload& w, float* x, float* dy) {
  const BatchNormProblem p = w.problem();
  const std::int64_t total = p.numel();
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < total; ++i) {
    const std::int64_t c = p.layout == Layout::channels_first ? (i / p.spatial) % p.channels
                                                              : i % p.channels;
    const double mu = 2.0 * uniform(1000003ULL * c + 1);
    const double sigma = 1.25 + 0.75 * uniform(1000003ULL * c + 2);
    const double z = normal(4 * static_cast<std::uint64_t>(i) + 0x1234567);
    x[i] = static_cast<float>(mu + sigma * z);
    if (dy) dy[i] = static_cast<float>(0.1 + 0.25 * z + 0.5 * uniform(4 * static_cast<std::uint64_t>(i) + 0x89abcde));
  }
}

}  // namespace

FloatBuffer::FloatBuffer(std::size_t count) : size_(count) {
  const std::size_t alignment = 64;
  const std::size_t bytes = std::max<std::size_t>(
      alignment, (count * sizeof(float) + alignment - 1) / alignment * alignment);
  data_.reset(static_cast<float*>(std::aligned_alloc(alignment, bytes)));
  if (!data_) throw std::bad_alloc();
}

BufferPool::BufferPool(const Workload& workload, int sets) : workload_(workload) {
  const std::size_t n = static_cast<std::size_t>(workload.numel());
  const bool backward = workload.op == Op::backward;
  for (int s = 0; s < std::max(sets, 1); ++s) {
    x_.emplace_back(n);
    if (backward) dy_.emplace_back(n);
    out_.emplace_back(n);
  }
  fill_inputs(workload, x_[0].data(), backward ? dy_[0].data() : nullptr);
  for (int s = 0; s < this->sets(); ++s) {
    if (s > 0) std::memcpy(x_[s].data(), x_[0].data(), n * sizeof(float));
    if (s > 0 && backward) std::memcpy(dy_[s].data(), dy_[0].data(), n * sizeof(float));
    std::memset(out_[s].data(), 0, n * sizeof(float));
  }
}

BufferSet BufferPool::set(int i) const {
  return {.x = x_[i].data(), .dy = dy_.empty() ? nullptr : dy_[i].data(), .out = out_[i].data()};
}

void flush_from_caches(const void* data, std::size_t bytes) {
  const char* begin = static_cast<const char*>(data);
  const char* first = begin - reinterpret_cast<std::uintptr_t>(begin) % 64;
#if defined(__x86_64__)
  for (const char* p = first; p < begin + bytes; p += 64) _mm_clflush(p);
  _mm_mfence();
#elif defined(__aarch64__)
  for (const char* p = first; p < begin + bytes; p += 64) asm volatile("dc civac, %0" ::"r"(p) : "memory");
  asm volatile("dsb ish" ::: "memory");
#else
  (void)first;
#endif
}

void BufferPool::flush_outputs(int i) const {
  const FloatBuffer& out = out_[static_cast<std::size_t>(i)];
  flush_from_caches(out.data(), out.size() * sizeof(float));
}

std::size_t BufferPool::bytes() const {
  return static_cast<std::size_t>(sets()) * workload_.buffer_set_bytes();
}

int cold_set_count(const Workload& workload, std::size_t l3_bytes) {
  const std::size_t per_set = workload.buffer_set_bytes();
  const std::size_t others = (4 * l3_bytes + per_set - 1) / per_set;  // sets between two uses
  return static_cast<int>(std::max<std::size_t>(others, 1)) + 1;
}

ChannelParams make_channel_params(std::int64_t channels, double eps) {
  ChannelParams params;
  params.eps = eps;
  const std::size_t c = static_cast<std::size_t>(channels);
  params.gamma.resize(c);
  params.beta.resize(c);
  params.mean.resize(c);
  params.var.resize(c);
  params.invstd.resize(c);
  for (std::size_t i = 0; i < c; ++i) {
    params.gamma[i] = static_cast<float>(1.0 + 0.5 * uniform(7777777ULL * i + 3));
    params.beta[i] = static_cast<float>(0.5 * uniform(7777777ULL * i + 4));
  }
  return params;
}

}  // namespace bnorm::bench
