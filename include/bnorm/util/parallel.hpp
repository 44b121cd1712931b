// bnorm/util/parallel.hpp: the one static split of n elements between OpenMP threads.
//
// Every element-wise pass over parameters (zero_grad, the optimizer updates) and activations
// uses it, and Linear splits its weight rows the same way, so that from one training step to
// the next each thread keeps touching the same elements. That is worth more than it seems:
// where the cores do not share their L2 (2 vCPUs of a cloud VM may sit on different CCDs), an
// element that the other core wrote last costs a cache-to-cache transfer; with the optimizer
// on one thread after a two-thread backward, the SGD update of mlp-paper took 5x longer.
// Fixed ranges also make results independent of the thread count for element-wise bodies.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace bnorm {

struct IndexRange {
  std::int64_t begin = 0, end = 0;
};

// Thread t's share of [0, n) out of `threads`: contiguous, in order, with boundaries at
// multiples of `granule` (16 floats = one cache line, so no line has two writers).
inline IndexRange static_range(std::int64_t n, int t, int threads, std::int64_t granule = 16) {
  const std::int64_t granules = (n + granule - 1) / granule;
  return {std::min(n, granules * t / threads * granule), std::min(n, granules * (t + 1) / threads * granule)};
}

// Runs work(t, threads) once per OpenMP thread, or once as work(0, 1) on the calling thread
// when the job has fewer than min_parallel elements (below which an OpenMP region costs more
// than it saves) or is already inside a parallel region. work must not throw.
template <class Work>
void parallel_threads(std::int64_t elements, std::int64_t min_parallel, const Work& work) {
  if (elements < min_parallel || omp_get_max_threads() == 1 || omp_in_parallel()) return work(0, 1);
#pragma omp parallel
  work(omp_get_thread_num(), omp_get_num_threads());
}

// Runs range(begin, end) over [0, n), once per thread with its static_range.
template <class Range>
void parallel_ranges(std::int64_t n, std::int64_t min_parallel, std::int64_t granule, const Range& range) {
  parallel_threads(n, min_parallel, [&](int t, int threads) {
    const IndexRange r = static_range(n, t, threads, granule);
    if (r.begin < r.end) range(r.begin, r.end);
  });
}

// Element-wise passes: below 2^15 elements (128 KB of floats) one thread is faster.
constexpr std::int64_t elementwise_min_parallel = std::int64_t{1} << 15;

template <class Range>
void parallel_elementwise(std::int64_t n, const Range& range) {
  parallel_ranges(n, elementwise_min_parallel, 16, range);
}

}  // namespace bnorm
