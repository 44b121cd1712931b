// The speed-of-light loops, included by probe.cpp (baseline x86-64) and probe_avx2.cpp
// (compiled with -mavx2 -mfma), each getting its own copy (internal linkage), so the two
// instruction sets never merge at link time.
//
// They move exactly the bytes no batch norm can avoid, with trivial arithmetic per element
// so the loads and stores cannot be elided:
//   forward:  read x once, write y            y  = x * a + b
//   backward: read x and dy once, write dx    dx = dy * a + x * b
// Large inputs are split across all threads (OpenMP, static schedule) as the kernels are.
// Small inputs run on the calling thread without entering an OpenMP region at all, as the
// kernels do: a fork/join costs microseconds, more than moving 128 KiB does, and a probe
// that paid it would flatter every implementation measured against it.
// They are plain loops on purpose: no streaming stores or prefetch tricks, so a kernel
// that uses them can beat 100% of this "speed of light".
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace {

constexpr std::int64_t probe_parallel_min_elements = std::int64_t{1} << 15;  // 128 KiB of x

// Runs body(begin, end) over [0, n): in parallel for large n, inline for small n.
template <typename Body>
inline void probe_split(std::int64_t n, Body body) {
  if (n < probe_parallel_min_elements) return body(0, n);
#pragma omp parallel
  {
    const std::int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
    // Whole 64-byte lines per thread so that no line is written by two threads.
    const std::int64_t lines = (n + 15) / 16;
    const std::int64_t begin = std::min(n, lines * t / threads * 16);
    const std::int64_t end = std::min(n, lines * (t + 1) / threads * 16);
    body(begin, end);
  }
}

void probe_forward_loop(const float* __restrict x, float* __restrict y, std::int64_t n) {
  probe_split(n, [=](std::int64_t begin, std::int64_t end) {
#pragma omp simd
    for (std::int64_t i = begin; i < end; ++i) y[i] = x[i] * 1.0009765625f + 0.5f;
  });
}

void probe_backward_loop(const float* __restrict x, const float* __restrict dy,
                         float* __restrict dx, std::int64_t n) {
  probe_split(n, [=](std::int64_t begin, std::int64_t end) {
#pragma omp simd
    for (std::int64_t i = begin; i < end; ++i) dx[i] = dy[i] * 1.0009765625f + x[i] * 0.25f;
  });
}

}  // namespace
