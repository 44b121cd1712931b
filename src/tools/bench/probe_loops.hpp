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
// they read their inputs twice. It runs the ideal of that shape, with no per-channel work
// (pivots, reductions, merges), in the order the layout allows:
//   sliced (channels_first, spatial > 1): a slice of channels is whole in every image, so a
//     kernel can finish it while it is in L2. Each thread walks its share in slices of
//     two_pass_slice_bytes per input, both passes per slice.
//   whole (channels_last and (N, C)): every row holds every channel, so no channel is final
//     before every row is read. Each thread reads its whole share (pass 1), waits for the
//     others at a barrier, then reads it again (pass 2), from L3 where a share exceeds L2.
//     (The sliced order is no bound here: splitting channels across threads instead of rows,
//     a group per thread while it is in L2, measured slower than bnorm; docs/benchmarks.md,
//     run of 2026-11-22, commit 9f657ab.)
// Per slice or share,
//   forward:  pass 1 sums x - x0 and its square (the statistics' arithmetic), pass 2 writes
//             y = x * a + b with a taken from those sums;
//   backward: pass 1 sums dy and dy * x, pass 2 writes dx = dy * a + x * b.
// Its time is what a two-pass batch norm costs on this machine when nothing else costs
// anything: a kernel's %SOL above the two-pass probe's own %SOL would need the data read once
// (whole order), slices other than these (sliced order: contiguous 16 KiB slices ran at
// 101-109% of the one-pass probe from DRAM, against 94-98% for 256 KiB), or streaming stores
// (whole order with pass 2 streamed: 93-102% from DRAM, but slower in cache). See
// docs/benchmarks.md, the two runs "2026-11-22, no kernel change".
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

// The pass-1 sums only steer a, by at most a rounding, so that pass 2 depends on them.
inline float two_pass_coefficient(float s1, float s2) { return 1.0009765625f + (s1 + s2) * 1e-30f; }

// Sums of term(i, a1[l], a2[l]) over [begin, end) in kTwoPassLanes independent lanes, so
// that pass 1 runs at the speed of the loads, not at the latency of one accumulator (a
// plain reduction loop, one vector chain: 1.1-1.3x the time in cache, micro-benchmark).
constexpr int kTwoPassLanes = 32;
template <typename Term>
inline float two_pass_sums(std::int64_t begin, std::int64_t end, Term term) {
  float a1[kTwoPassLanes] = {}, a2[kTwoPassLanes] = {};
  std::int64_t i = begin;
  for (; i + kTwoPassLanes <= end; i += kTwoPassLanes)
    for (int l = 0; l < kTwoPassLanes; ++l) term(i + l, a1[l], a2[l]);
  for (; i < end; ++i) term(i, a1[0], a2[0]);
  float s1 = 0.0f, s2 = 0.0f;
  for (int l = 0; l < kTwoPassLanes; ++l) s1 += a1[l], s2 += a2[l];
  return two_pass_coefficient(s1, s2);
}

// The passes over [begin, end). Plain functions over restrict pointers: as lambda bodies, GCC
// reloaded the captured pointers on every iteration and left the backward sums scalar (5x
// slower).
inline float two_pass_forward_sums(const float* __restrict x, std::int64_t begin, std::int64_t end) {
  const float pivot = x[begin];
  return two_pass_sums(begin, end, [&](std::int64_t i, float& a1, float& a2) {
    const float d = x[i] - pivot;
    a1 += d;
    a2 += d * d;
  });
}

inline void two_pass_forward_write(const float* __restrict x, float* __restrict y, float a,
                                   std::int64_t begin, std::int64_t end) {
#pragma omp simd
  for (std::int64_t i = begin; i < end; ++i) y[i] = x[i] * a + 0.5f;
}

inline float two_pass_backward_sums(const float* __restrict x, const float* __restrict dy,
                                    std::int64_t begin, std::int64_t end) {
  return two_pass_sums(begin, end, [&](std::int64_t i, float& a1, float& a2) {
    a1 += dy[i];
    a2 += dy[i] * x[i];
  });
}

inline void two_pass_backward_write(const float* __restrict x, const float* __restrict dy,
                                    float* __restrict dx, float a, std::int64_t begin,
                                    std::int64_t end) {
#pragma omp simd
  for (std::int64_t i = begin; i < end; ++i) dx[i] = dy[i] * a + x[i] * 0.25f;
}

// write(begin, end, sums(begin, end)) over [0, n) in the order above: kWhole, each thread's
// share with a barrier between the passes, pass 2 slice by slice from the share's end (the
// most recently read first, as the kernels do); else slice by slice.
template <bool kWhole, typename Sums, typename Write>
inline void two_pass_loop(std::int64_t n, Sums sums, Write write) {
  probe_split(n, [=](std::int64_t begin, std::int64_t end) {
    constexpr std::int64_t step = two_pass_slice_bytes / sizeof(float);
    if constexpr (kWhole) {
      const float a = sums(begin, end);
#pragma omp barrier
      for (std::int64_t e = end; e > begin; e -= step) write(std::max(begin, e - step), e, a);
    } else {
      for (std::int64_t s = begin; s < end; s += step) {
        const std::int64_t e = std::min(end, s + step);
        write(s, e, sums(s, e));
      }
    }
  });
}

template <bool kWhole>
void probe_two_pass_forward_loop(const float* x, float* y, std::int64_t n) {
  two_pass_loop<kWhole>(
      n, [=](std::int64_t b, std::int64_t e) { return two_pass_forward_sums(x, b, e); },
      [=](std::int64_t b, std::int64_t e, float a) { two_pass_forward_write(x, y, a, b, e); });
}

template <bool kWhole>
void probe_two_pass_backward_loop(const float* x, const float* dy, float* dx, std::int64_t n) {
  two_pass_loop<kWhole>(
      n, [=](std::int64_t b, std::int64_t e) { return two_pass_backward_sums(x, dy, b, e); },
      [=](std::int64_t b, std::int64_t e, float a) { two_pass_backward_write(x, dy, dx, a, b, e); });
}

}  // namespace
