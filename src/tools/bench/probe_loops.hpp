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
//
// The two-pass probe: forward_train and backward cannot write their first output before
// they have read all of a channel (the statistics, or the gradient sums, come first), so
// they read their inputs twice. It runs the ideal of that shape, with no channel structure
// at all: each thread walks its share in slices of two_pass_slice_bytes per input (so that
// the second pass finds the slice in L2) and per slice
//   forward:  pass 1 sums x - x0 and its square (the statistics' arithmetic), pass 2 writes
//             y = x * a + b with a taken from those sums;
//   backward: pass 1 sums dy and dy * x, pass 2 writes dx = dy * a + x * b.
// Its time is what a two-pass batch norm costs on this machine when nothing else costs
// anything (pivots, per-channel reductions, merges, barriers): a kernel's %SOL above the
// two-pass probe's own %SOL would need the data read once. A kernel can reach it only where
// a slice holds whole channels (channels_first, long runs, channel block by block); where
// every channel spans every row (channels_last, (N, C), short channels_first runs), pass 2
// starts after the whole tensor is read, from L3 once a thread's share exceeds its L2, and
// the two-pass probe is optimistic (docs/benchmarks.md, run of 2026-11-22).
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

// Per input: with x, y (and dy) of a slice in a 1 MiB L2 and room to spare.
constexpr std::int64_t two_pass_slice_bytes = std::int64_t{256} << 10;

// slice(begin, end) over each thread's share (probe_split), slice by slice.
template <typename Slice>
inline void two_pass_slices(std::int64_t n, Slice slice) {
  constexpr std::int64_t step = two_pass_slice_bytes / sizeof(float);
  probe_split(n, [=](std::int64_t begin, std::int64_t end) {
    for (std::int64_t s = begin; s < end; s += step) slice(s, std::min(end, s + step));
  });
}

// The pass-1 sums only steer a, by at most a rounding, so that pass 2 depends on them.
inline float two_pass_coefficient(float s1, float s2) { return 1.0009765625f + (s1 + s2) * 1e-30f; }

// Sums of term(i, a1[l], a2[l]) over [begin, end) in kTwoPassLanes independent lanes, so
// that pass 1 runs at the speed of the loads, not at the latency of one accumulator (a
// plain reduction loop, one vector chain: 1.1-1.3x the time in cache, micro-benchmark).
constexpr int kTwoPassLanes = 32;
template <typename Term>
inline void two_pass_sums(std::int64_t begin, std::int64_t end, float& s1, float& s2, Term term) {
  float a1[kTwoPassLanes] = {}, a2[kTwoPassLanes] = {};
  std::int64_t i = begin;
  for (; i + kTwoPassLanes <= end; i += kTwoPassLanes)
    for (int l = 0; l < kTwoPassLanes; ++l) term(i + l, a1[l], a2[l]);
  for (; i < end; ++i) term(i, a1[0], a2[0]);
  s1 = s2 = 0.0f;
  for (int l = 0; l < kTwoPassLanes; ++l) s1 += a1[l], s2 += a2[l];
}

// One slice of each. Plain functions over restrict pointers: as lambda bodies, GCC reloaded
// the captured pointers on every iteration and left the backward sums scalar (5x slower).
inline void two_pass_forward_slice(const float* __restrict x, float* __restrict y,
                                   std::int64_t begin, std::int64_t end) {
  const float pivot = x[begin];
  float s1, s2;
  two_pass_sums(begin, end, s1, s2, [&](std::int64_t i, float& a1, float& a2) {
    const float d = x[i] - pivot;
    a1 += d;
    a2 += d * d;
  });
  const float a = two_pass_coefficient(s1, s2);
#pragma omp simd
  for (std::int64_t i = begin; i < end; ++i) y[i] = x[i] * a + 0.5f;
}

inline void two_pass_backward_slice(const float* __restrict x, const float* __restrict dy,
                                    float* __restrict dx, std::int64_t begin, std::int64_t end) {
  float s1, s2;
  two_pass_sums(begin, end, s1, s2, [&](std::int64_t i, float& a1, float& a2) {
    a1 += dy[i];
    a2 += dy[i] * x[i];
  });
  const float a = two_pass_coefficient(s1, s2);
#pragma omp simd
  for (std::int64_t i = begin; i < end; ++i) dx[i] = dy[i] * a + x[i] * 0.25f;
}

void probe_two_pass_forward_loop(const float* x, float* y, std::int64_t n) {
  two_pass_slices(n, [=](std::int64_t begin, std::int64_t end) {
    two_pass_forward_slice(x, y, begin, end);
  });
}

void probe_two_pass_backward_loop(const float* x, const float* dy, float* dx, std::int64_t n) {
  two_pass_slices(n, [=](std::int64_t begin, std::int64_t end) {
    two_pass_backward_slice(x, dy, dx, begin, end);
  });
}

}  // namespace
