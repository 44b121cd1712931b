// Memory for the benchmark: aligned float buffers, the per-channel parameters of a
// workload, and the pool of identical buffer sets that cold measurements rotate through.
// Everything here is allocated before any timed region. (The L3 size that sizes the
// rotation is cpu::cpu_features().llc_bytes, the one the kernels use.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "tools/bench/cases.hpp"

namespace bnorm::bench {

// A 64-byte-aligned array of floats (one cache line, one AVX-512 register).
class FloatBuffer {
 public:
  FloatBuffer() = default;
  explicit FloatBuffer(std::size_t count);
  float* data() const { return data_.get(); }
  std::size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> data_;
  std::size_t size_ = 0;
};

// Per-channel inputs, shared by every implementation. mean/var/invstd are the batch
// statistics of x (from the reference): the "running" statistics of forward_infer and the
// saved statistics of backward, so every op sees realistic values.
struct ChannelParams {
  std::vector<float> gamma, beta;  // [C]
  std::vector<float> mean;         // [C] batch mean of x
  std::vector<float> var;          // [C] biased batch variance of x (oneDNN's convention)
  std::vector<float> invstd;       // [C] 1/sqrt(var + eps)
  double eps = 1e-5;
};

// The big per-call buffers of one set. Forward: x in, out = y. Backward: x and dy in,
// out = dx.
struct BufferSet {
  float* x = nullptr;
  float* dy = nullptr;  // backward only
  float* out = nullptr;
};

// `sets` identical copies of the inputs (out buffers zeroed, so every page is touched
// before timing). Cold measurements use set i, i+1, ... in turn; hot ones reuse set 0.
class BufferPool {
 public:
  BufferPool(const Workload& workload, int sets);
  int sets() const { return static_cast<int>(x_.size()); }
  BufferSet set(int i) const;
  std::size_t bytes() const;
  // Writes set i's out buffer back to DRAM and evicts it from the caches (flush_from_caches).
  void flush_outputs(int i) const;

 private:
  const Workload workload_;
  std::vector<FloatBuffer> x_, dy_, out_;
};

// Writes back and evicts [data, data + bytes) from every cache level (clflush on x86-64,
// dc civac on AArch64; elsewhere it does nothing).
void flush_from_caches(const void* data, std::size_t bytes);

// How many sets a cold measurement needs so that between two uses of one set at least
// 4 x L3 bytes of other sets are touched.
int cold_set_count(const Workload& workload, std::size_t l3_bytes);

// Deterministic per-channel gamma/beta (statistics are filled in by the caller).
ChannelParams make_channel_params(std::int64_t channels, double eps);

}  // namespace bnorm::bench
