// The speed-of-light loops, included by probe.cpp (baseline x86-64) and probe_avx2.cpp
// (compiled with -mavx2 -mfma), each getting its own copy (internal linkage), so the two
// instruction sets never merge at link time.
//
// They move exactly the bytes no batch norm can avoid, with trivial arithmetic per element
// so the loads and stores cannot be elided, split across threads the way the kernels are
// (OpenMP, static schedule, all threads) except for small inputs, which run on one thread
// as the kernels do: a fork/join costs microseconds, more than moving 128 KiB does, and a
// probe that pays it would flatter every implementation measured against it.
//   forward:  read x once, write y            y  = x * a + b
//   backward: read x and dy once, write dx    dx = dy * a + x * b
// They are plain loops on purpose: no streaming stores or prefetch tricks, so a kernel
// that uses them can beat 100% of this "speed of light".
#pragma once

#include <cstdint>

namespace {

constexpr std::int64_t probe_parallel_min_elements = std::int64_t{1} << 15;  // 128 KiB of x

void probe_forward_loop(const float* __restrict x, float* __restrict y, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= probe_parallel_min_elements)
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] * 1.0009765625f + 0.5f;
}

void probe_backward_loop(const float* __restrict x, const float* __restrict dy,
                         float* __restrict dx, std::int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= probe_parallel_min_elements)
  for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * 1.0009765625f + x[i] * 0.25f;
}

}  // namespace
