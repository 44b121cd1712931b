// Building blocks of the fast CPU batch norm (vector primitives, per-channel arithmetic,
// threading helpers), shared by the channels_first and channels_last halves. Included via
// batchnorm_cpu_impl.hpp only; see that file for the design.
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>

#include "bnorm/kernels/batchnorm.hpp"
#include "kernels/cpu/cache_residency.hpp"
#include "kernels/cpu/cpu_features.hpp"

namespace bnorm::cpu {
namespace {

using i64 = std::int64_t;

// ---- Tuning constants (all depend on nothing but the problem, never on the thread count).
constexpr i64 kFoldSteps = 32;              // vector steps summed in float before a double fold
constexpr double kPivotRatio2 = 4.0;        // redo when (mean - K)^2 > 4 var
constexpr i64 kPivotSamples = 16;           // channels_last: rows averaged into a pivot
constexpr i64 kParallelMinElems = 1 << 15;  // below this (128 KB), one thread, no omp region
constexpr i64 kChunkBytes = 32 << 10;       // channels_last: bytes of one row chunk (one group)
constexpr i64 kStreamMinSpanBytes = 4 << 10;  // channels_first: shortest span worth streaming
constexpr std::size_t kResidencyMinBytes = 256 << 10;  // smallest tensor whose residency is timed
constexpr i64 kMaxChunks = 32;  // chunked reductions: bounds the workspace and the merge work
constexpr i64 kPrefetchAheadBytes = 8 << 10;  // software prefetch: how far ahead of the reads
constexpr i64 kEpilogueBlock = 64;  // channels whose 1/sqrt(var + eps) is one vector loop

// One float lane: the tail of every vector loop, in both translation units.
struct F1 {
  static constexpr int width = 1;
  float v;
  static F1 zero() { return {0.0f}; }
  static F1 set1(float a) { return {a}; }
  static F1 load(const float* p) { return {*p}; }
  static void store(float* p, F1 a) { *p = a.v; }
  static void stream(float* p, F1 a) { *p = a.v; }
  static void fence() {}
  friend F1 operator+(F1 a, F1 b) { return {a.v + b.v}; }
  friend F1 operator-(F1 a, F1 b) { return {a.v - b.v}; }
  friend F1 operator*(F1 a, F1 b) { return {a.v * b.v}; }
  // Fused where the vectors' fmadd is (the AVX2 unit): a value must not depend on whether a
  // vector or a tail computed it (the split of a run into head, vectors and tail changes with
  // the alignment and with OutputStores). Optimized, a * b + c is fused by -ffp-contract=fast
  // (src/CMakeLists.txt); __builtin_fmaf there instead cost 1.045x the time of 256x64x8x8
  // channels_first backward in cache. Unoptimized (Debug, sanitizers) nothing is contracted,
  // so the builtin.
#if defined(__FMA__) && !defined(__OPTIMIZE__)
  static F1 fmadd(F1 a, F1 b, F1 c) { return {__builtin_fmaf(a.v, b.v, c.v)}; }
#else
  static F1 fmadd(F1 a, F1 b, F1 c) { return {a.v * b.v + c.v}; }
#endif
  static void add_to(double* acc, F1 a) { acc[0] += a.v; }
  static void store_to(double* acc, F1 a) { acc[0] = a.v; }
};

// acc[l] = v[l] for a partial's first term, acc[l] += v[l] for the others: the chunked sums
// start their partials this way instead of clearing them first (a memset of 16 bytes a
// channel per chunk was 5% of 8x512x7x7 channels_first forward_train in cache).
template <class V>
void store_or_add(double* acc, V v, bool first) {
  if (first) V::store_to(acc, v);
  else V::add_to(acc, v);
}

// The deviation x - k of the shifted sums, given neg_k = -k, as the multiply-add x * 1 + (-k):
// the same bits as the subtraction (x * 1 is exact, then one rounding), but on the multiply-add
// pipes. Each vector step of the statistics is that subtraction, an add (the sum) and a
// multiply-add (the sum of squares); Zen 4 runs adds on two pipes and multiply-adds on two
// others, and with the subtraction as a multiply-add the loop ran 0.90-0.94x the time in a
// micro-benchmark (one thread, (384, 512) and (1568, 256) rows in L2 and L3). dlopen A/B,
// forward_train in cache: channels_last 0.93-0.98x, channels_first 0.97-0.99x, from DRAM
// 0.98-1.01x; backward (x - mean, its dy (x - mean) sums) channels_last 0.95-0.99x, channels
// first blocks the same; but the image rows' backward from DRAM (8x512x7x7) 1.06-1.11x, so
// that one keeps the subtraction.
template <class V>
V deviation(V x, V neg_k) {
  return V::fmadd(x, V::set1(1.0f), neg_k);
}
// out[j] = -v[j], j < n: per-channel constants as deviation() takes them.
inline void negate(const float* v, i64 n, float* out) {
  for (i64 j = 0; j < n; ++j) out[j] = -v[j];
}

// A mask for the overlapping last vector of a run (see batchnorm_cpu_nchw_rows.hpp), or none.
struct NoMask {};
template <class V>
V masked(V v, NoMask) {
  return v;
}
template <class V>
V masked(V v, V mask) {
  return v * mask;
}
// The mask for a run of len values whose last len % W are loaded as its last W values: ones
// on the lanes not yet counted (the last len % W), zeros on those the vector before covered.
template <class V>
V last_vector_mask(i64 len) {
  alignas(64) float lanes[V::width];
  for (int l = 0; l < V::width; ++l) lanes[l] = l >= V::width - len % V::width ? 1.0f : 0.0f;
  return V::load(lanes);
}

// ---- Threading: a team body(thread, threads); small problems call it directly.
template <class Body>
void run_team(bool parallel, Body&& body) {
  if (parallel && omp_get_max_threads() > 1) {
#pragma omp parallel
    body(omp_get_thread_num(), omp_get_num_threads());
  } else {
    body(0, 1);
  }
}

inline void team_barrier(int threads) {
  if (threads > 1) {
#pragma omp barrier
  }
}

struct Range {
  i64 begin, end;
};
// Contiguous share t of T of [0, n): which thread gets which piece, nothing else.
inline Range share(i64 n, int t, int threads) {
  return {n * t / threads, n * (t + 1) / threads};
}

inline bool is_aligned(const void* p, std::size_t bytes) {
  return reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
}

// ---- Chunked reductions (channels_last rows, channels_first image rows): the data is cut
// into chunks (boundaries from the problem only); pass 1 writes each chunk's per-channel
// partial sums to the caller's workspace, the merge adds them per channel in chunk order.
// One workspace serves one group of channels at a time.
struct ChunkWorkspace {
  i64 chunks, group;
  double* s1;    // [chunks][group] pass-1 partials (sum of x - k, or of dy)
  double* s2;    // [chunks][group] (sum of (x - k)^2, or of dy (x - mean))
  double* mean;  // [group] statistics of the settled channels (chunked_statistics)
  double* var;   // [group] biased variance; < 0 marks a channel waiting for its re-sum
  float* k;      // [group] pivot, then the k of the output transform
  float* scale;  // [group]
  float* shift;  // [group]
  float* extra;  // [group] backward: the third coefficient
};

inline std::size_t align64(std::size_t n) { return (n + 63) / 64 * 64; }

inline std::size_t chunk_workspace_bytes(i64 chunks, i64 group) {
  const std::size_t g = static_cast<std::size_t>(group);
  return 64 + 2 * align64(static_cast<std::size_t>(chunks) * g * 8) + 2 * align64(g * 8) +
         4 * align64(g * 4);
}

inline ChunkWorkspace chunk_workspace(std::span<std::byte> bytes, i64 chunks, i64 group) {
  const std::size_t g = static_cast<std::size_t>(group);
  std::byte* at = bytes.data() + (64 - reinterpret_cast<std::uintptr_t>(bytes.data()) % 64) % 64;
  auto take = [&](std::size_t n) {
    std::byte* r = at;
    at += align64(n);
    return r;
  };
  ChunkWorkspace ws{.chunks = chunks, .group = group};
  ws.s1 = reinterpret_cast<double*>(take(static_cast<std::size_t>(chunks) * g * 8));
  ws.s2 = reinterpret_cast<double*>(take(static_cast<std::size_t>(chunks) * g * 8));
  ws.mean = reinterpret_cast<double*>(take(g * 8));
  ws.var = reinterpret_cast<double*>(take(g * 8));
  ws.k = reinterpret_cast<float*>(take(g * 4));
  ws.scale = reinterpret_cast<float*>(take(g * 4));
  ws.shift = reinterpret_cast<float*>(take(g * 4));
  ws.extra = reinterpret_cast<float*>(take(g * 4));
  return ws;
}

// Sums the chunk partials of channels [r.begin, r.end) (relative to the group) in chunk
// order, into row 0 of ws.s1 and ws.s2. Row by row: walking one channel down the chunks
// instead touches a page per chunk (strides of `group` doubles) and was 40% of a (1024, 1024)
// forward_train.
inline void chunk_merge(const ChunkWorkspace& ws, Range r) {
  for (i64 chunk = 1; chunk < ws.chunks; ++chunk) {
    const double* a = ws.s1 + chunk * ws.group;
    const double* b = ws.s2 + chunk * ws.group;
    for (i64 c = r.begin; c < r.end; ++c) ws.s1[c] += a[c], ws.s2[c] += b[c];
  }
}

// ---- Per-channel arithmetic shared by both layouts.

struct MeanVar {
  double mean, var;  // var biased
};

// The number of values per channel, with the factors that turn its sums into means and
// the biased variance into the unbiased one, each divided out once per call. Divisions
// per channel (five, and a square root) were most of the per-channel epilogue: the divider
// is one unit, about 30 cycles a channel, 1 us of the 2.7 us of (60, 100) forward_train.
struct ChannelCount {
  double n;         // values per channel
  double inv_n;     // 1 / n
  double unbiased;  // n / (n - 1): Bessel's correction of the running variance
};
inline ChannelCount channel_count(i64 values) {
  const double n = static_cast<double>(values);
  return {n, 1.0 / n, n / (n - 1.0)};
}

// batchnorm_moments' output for channels c0 + j, j in r: mean[j], and m2 = n * var[j].
inline void write_moments(ChannelMoments out, i64 c0, Range r, const double* mean,
                          const double* var, const ChannelCount& m) {
  for (i64 j = r.begin; j < r.end; ++j) out.mean[c0 + j] = mean[j], out.m2[c0 + j] = var[j] * m.n;
}

// From shifted sums around pivot k over m.n values. bad_pivot: cancellation would cost
// precision (or the sums are not finite); the caller sums again around k = mean.
inline MeanVar mean_var_from_sums(double s1, double s2, const ChannelCount& m, float k,
                                  bool* bad_pivot) {
  const double d = s1 * m.inv_n;
  const double var = std::max(s2 * m.inv_n - d * d, 0.0);
  *bad_pivot = !(d * d <= kPivotRatio2 * var);
  return {static_cast<double>(k) + d, var};
}

// Finite: neither infinite nor NaN. As a comparison (not std::isfinite) so that loops testing
// it vectorize (-fno-trapping-math).
inline bool finite(double v) { return std::abs(v) <= std::numeric_limits<double>::max(); }
inline bool finite2(double a, double b) { return finite(a) && finite(b); }

// The slow exact path (double, two passes): only for channels whose float sums are not
// finite. visit(f) calls f(offset) for every value of the channel.
template <class Visit>
MeanVar mean_var_double(const float* x, const ChannelCount& m, Visit&& visit) {
  double sum = 0.0;
  visit([&](i64 i) { sum += x[i]; });
  const double mean = sum / m.n;
  double m2 = 0.0;
  visit([&](i64 i) {
    const double d = x[i] - mean;
    m2 += d * d;
  });
  return {mean, m2 / m.n};
}

// One channel's mean and variance from its shifted sums s1, s2 around pivot k: exact() (the
// two-pass double path) where the sums are not finite. Where the pivot was poor and `retry`,
// k becomes the mean and resum(k, s1, s2) sums the channel again around it, once; resum
// returns false where one channel cannot be summed alone (a channels_last column): then the
// result is nullopt, k holds the new pivot, and the caller re-sums later.
template <class Exact, class Resum>
std::optional<MeanVar> settle_channel(double& s1, double& s2, float& k, const ChannelCount& m,
                                      bool retry, Exact&& exact, Resum&& resum) {
  for (;;) {
    bool bad_pivot = false;
    const MeanVar r = finite2(s1, s2) ? mean_var_from_sums(s1, s2, m, k, &bad_pivot) : exact();
    if (!bad_pivot || !retry) return r;
    k = static_cast<float>(r.mean), retry = false;
    if (!resum(k, s1, s2)) return std::nullopt;
  }
}

// Pivots of channels whose statistics are chunked: k[c] = the mean of value(c, j) over
// j < samples, a few values of channel c that the caller picks cheap to read (channels_last:
// spread rows; channels_first image rows: the first run). One value alone is more than 2 std
// from its channel's mean for 5% of normal channels; a mean of 16 independent ones, 8 std
// out, ~1e-15. Samples outer, channels inner: one chain of dependent double adds per
// channel cost 4 us of a 40 us 8x512x7x7 forward. acc: [C] scratch.
template <class Value>
void sample_pivots(i64 samples, Range chans, Value&& value, double* acc, float* k) {
  std::fill(acc + chans.begin, acc + chans.end, 0.0);
  for (i64 j = 0; j < samples; ++j)
    for (i64 c = chans.begin; c < chans.end; ++c) acc[c] += value(c, j);
  const double inv_samples = 1.0 / static_cast<double>(samples);
  for (i64 c = chans.begin; c < chans.end; ++c) k[c] = static_cast<float>(acc[c] * inv_samples);
}

// The common case of settle_channels, one vector loop: mean and biased variance of channels
// [r) from their sums ws.s1, ws.s2 (row 0) around the pivots ws.k, into ws.mean, ws.var, as
// mean_var_from_sums computes them. Returns whether every channel is normal: finite sums and
// a pivot within 2 std of the mean (NaN fails the comparisons). Channel by channel, with the
// branches, the settling was about a tenth of (60, 100) forward_train in cache.
inline bool settle_normal(const ChunkWorkspace& ws, Range r, const ChannelCount& m) {
  i64 abnormal = 0;  // a count: GCC vectorizes neither a bool nor a 32-bit flag here
  for (i64 c = r.begin; c < r.end; ++c) {
    bool bad_pivot;
    const MeanVar s = mean_var_from_sums(ws.s1[c], ws.s2[c], m, ws.k[c], &bad_pivot);
    abnormal += bad_pivot;
    abnormal += !finite(s.var);
    ws.mean[c] = s.mean, ws.var[c] = s.var;
  }
  return abnormal == 0;
}

// Channel c of settle_channels (its sums ws.s1[c], ws.s2[c] around ws.k[c]): true and its
// ws.mean, ws.var; or false: it waits for its group's re-sum (ws.var[c] = -1), around the new
// pivot ws.k[c]. retry: whether a poor pivot may be re-summed.
template <class Exact, class Resum>
bool settle_one(const ChunkWorkspace& ws, i64 c, const ChannelCount& m, bool retry, Exact&& exact,
                Resum&& resum) {
  float k = ws.k[c];
  const std::optional<MeanVar> r = settle_channel(
      ws.s1[c], ws.s2[c], k, m, retry, [&] { return exact(c); },
      [&](float kc, double& s1, double& s2) { return resum(c, kc, s1, s2); });
  ws.k[c] = k;  // done() may overwrite it
  if (!r) {
    ws.var[c] = -1.0;
    return false;
  }
  ws.mean[c] = r->mean, ws.var[c] = r->var;
  return true;
}

// Mean and variance of channels `chans` from their sums ws.s1, ws.s2 (row 0) around the
// pivots ws.k, then done(Range) on the settled ones: one vector loop and one range when all
// are normal (settle_normal, almost always), else channel by channel (settle_channel), in as
// few ranges as the re-sums allow. resum, exact: as for chunked_statistics. Returns false when
// some channel waits for its group's re-sum (resum returned false).
template <class Exact, class Resum, class Done>
bool settle_channels(const ChunkWorkspace& ws, Range chans, const ChannelCount& m, Exact&& exact,
                     Resum&& resum, Done&& done) {
  if (settle_normal(ws, chans, m)) {
    if (chans.begin < chans.end) done(chans);
    return true;
  }
  bool settled = true;
  i64 run = chans.begin;  // the settled channels from `run` on wait for done()
  for (i64 c = chans.begin; c < chans.end; ++c) {
    if (settle_one(ws, c, m, true, exact, resum)) continue;
    settled = false;
    if (run < c) done(Range{run, c});
    run = c + 1;
  }
  if (run < chans.end) done(Range{run, chans.end});
  return settled;
}

// Mean and variance of a group of gc channels from chunk partials. Team-wide: every thread
// calls it; ends with a barrier.
//   samples, value(c, j): the pivots (sample_pivots);
//   sum_chunk(chunk, k):  fills row `chunk` of ws.s1/s2 with sums around the pivots k[gc];
//   resum(c, k, s1, s2):  where one channel can be summed alone cheaply (channels_first runs),
//                         sums channel c around k into s1, s2 and returns true; false (a
//                         channels_last channel is a column: summing one reads every line)
//                         re-sums the whole group with sum_chunk instead;
//   exact(c):             the two-pass double MeanVar of channel c (non-finite sums only);
//   done(Range):          channels whose mean and variance are in ws.mean, ws.var; every
//                         channel once, from the thread that owns it, in as few ranges as
//                         the re-sums allow (one, almost always), so that the caller's
//                         per-channel arithmetic runs as vector loops.
// A channel whose pivot was poor (more than 2 std from its mean) is summed again around its
// mean. redo: shared by the team, set to `tag` (the group) when the group must be re-summed.
template <class Value, class SumChunk, class Resum, class Exact, class Done>
void chunked_statistics(i64 gc, const ChannelCount& m, const ChunkWorkspace& ws, int t, int threads,
                        std::atomic<i64>& redo, i64 tag, i64 samples, Value&& value,
                        SumChunk&& sum_chunk, Resum&& resum, Exact&& exact, Done&& done) {
  const Range mine = share(ws.chunks, t, threads), chans = share(gc, t, threads);
  sample_pivots(samples, chans, value, ws.var, ws.k);  // ws.var: scratch here
  team_barrier(threads);
  for (i64 chunk = mine.begin; chunk < mine.end; ++chunk) sum_chunk(chunk, ws.k);
  team_barrier(threads);
  chunk_merge(ws, chans);
  if (!settle_channels(ws, chans, m, exact, resum, done)) redo.store(tag, std::memory_order_relaxed);
  team_barrier(threads);
  if (redo.load(std::memory_order_relaxed) != tag) return;
  // Rare: some channel's pivot was far from its mean. Re-sum the group (the pivots
  // of settled channels were rewritten by done(), their new sums are not used).
  for (i64 chunk = mine.begin; chunk < mine.end; ++chunk) sum_chunk(chunk, ws.k);
  team_barrier(threads);
  chunk_merge(ws, chans);
  for (i64 c = chans.begin; c < chans.end; ++c)
    if (ws.var[c] < 0.0 && settle_one(ws, c, m, false, exact, resum)) done(Range{c, c + 1});
  team_barrier(threads);
}

struct Normalizer {
  float k, scale, shift;  // y = (x - k) * scale + shift
};

// invstd[j] = 1 / sqrt(var[j] + eps), j < n (at most kEpilogueBlock), in double: for a block
// of channels at once, before their other per-channel arithmetic, so that it is one vector
// loop (vsqrtpd, vdivpd; -fno-math-errno). Inside the per-channel epilogue the divider's
// latency made it about 25 cycles a channel (perf: the epilogue went from about a third to
// 15% of (60, 100) forward_train in cache).
template <class T>
void invstd_block(const T* var, i64 n, double eps, double* invstd) {
  for (i64 j = 0; j < n; ++j) invstd[j] = 1.0 / std::sqrt(static_cast<double>(var[j]) + eps);
}

// The end of forward_train for channels c0 + j, j in r, statistics mean[j], var[j] (biased):
// writes save_mean, save_invstd and the running statistics, and gives out(j, Normalizer),
//   y = (x - k) * scale + shift,  scale = gamma * invstd,  shift = beta - (mean - k) * scale,
// k = the mean rounded to float (0 where it is not finite), shift in double so that large
// offsets stay exact. A block of channels at a time, one simple loop per output, each of which
// GCC vectorizes: as one loop over channels doing everything, it stayed scalar (too many
// pointers that might alias). With settle_normal, (60, 100) forward_train in cache went from
// 1.90 to 1.60 us, from DRAM 5.7 to 5.4 us.
template <class Out>
void finalize_channels(const BatchNormForwardTrainArgs& a, i64 c0, Range r, const double* mean,
                       const double* var, const ChannelCount& m, Out&& out) {
  double invstd[kEpilogueBlock], scale[kEpilogueBlock];
  float k[kEpilogueBlock];
  const double f = a.running.factor;
  for (i64 j0 = r.begin; j0 < r.end; j0 += kEpilogueBlock) {
    const i64 nb = std::min(kEpilogueBlock, r.end - j0), b = c0 + j0;
    const double *mu = mean + j0, *v = var + j0;
    invstd_block(v, nb, a.eps, invstd);
    for (i64 j = 0; j < nb; ++j)
      a.save_mean[b + j] = static_cast<float>(mu[j]), a.save_invstd[b + j] = static_cast<float>(invstd[j]);
    // running = (1 - f) * running + f * batch; running var is unbiased: var * n / (n - 1).
    if (a.running.mean)
      for (i64 j = 0; j < nb; ++j) {
        a.running.mean[b + j] = static_cast<float>((1.0 - f) * a.running.mean[b + j] + f * mu[j]);
        a.running.var[b + j] =
            static_cast<float>((1.0 - f) * a.running.var[b + j] + f * v[j] * m.unbiased);
      }
    for (i64 j = 0; j < nb; ++j)
      k[j] = finite(mu[j]) ? static_cast<float>(mu[j]) : 0.0f;
    if (a.gamma)
      for (i64 j = 0; j < nb; ++j) scale[j] = a.gamma[b + j] * invstd[j];
    else
      for (i64 j = 0; j < nb; ++j) scale[j] = invstd[j];
    for (i64 j = 0; j < nb; ++j) {
      const double beta = a.beta ? a.beta[b + j] : 0.0;
      out(j0 + j, Normalizer{k[j], static_cast<float>(scale[j]),
                             static_cast<float>(beta - (mu[j] - k[j]) * scale[j])});
    }
  }
}

// Backward coefficients of channel c: dx = a * dy + b * (x - mean) + c.
//   a = gamma * invstd,  b = -a * invstd^2 * sum(dy (x-mean)) / m,  c = -a * sum(dy) / m
// (dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)), xhat = (x - mean) invstd).
struct GradCoef {
  float a, b, c;
};
inline GradCoef grad_coefficients(const BatchNormBackwardArgs& g, i64 c, double sdy,
                                  double sdyxm, const ChannelCount& m) {
  const double invstd = g.invstd[c], gamma = g.gamma ? g.gamma[c] : 1.0;
  const double a = gamma * invstd;
  if (g.statistics == BatchNormStatistics::frozen) return {static_cast<float>(a), 0.0f, 0.0f};
  return {static_cast<float>(a), static_cast<float>(-a * invstd * invstd * sdyxm * m.inv_n),
          static_cast<float>(-a * sdy * m.inv_n)};
}

// Channels c0 + j, j < n, with sums sdy[j], sdyxm[j]:
//   dgamma += sum dy * xhat = invstd * sum dy (x - mean);  dbeta += sum dy.
// (The pointers are copied out of g so that the loops vectorize: a store through g.dgamma
// could otherwise change g.)
inline void accumulate_param_grads(const BatchNormBackwardArgs& g, i64 c0, i64 n,
                                   const double* sdy, const double* sdyxm) {
  if (float* dgamma = g.mask.dgamma ? g.dgamma : nullptr) {
    const float* invstd = g.invstd;
    for (i64 j = 0; j < n; ++j) dgamma[c0 + j] += static_cast<float>(sdyxm[j] * invstd[c0 + j]);
  }
  if (float* dbeta = g.mask.dbeta ? g.dbeta : nullptr)
    for (i64 j = 0; j < n; ++j) dbeta[c0 + j] += static_cast<float>(sdy[j]);
}

inline bool backward_needs_sums(const BatchNormBackwardArgs& g) {
  return (g.mask.dgamma && g.dgamma) || (g.mask.dbeta && g.dbeta) ||
         (g.mask.dx && g.statistics == BatchNormStatistics::batch);
}

// Backward of channels g0 + c, c in `chans` (c relative to the group, as in ws), from the
// merged partials (ws.s1 = sum dy, ws.s2 = sum dy (x - mean); zeros when !sums): sums that
// are not finite (float overflow or non-finite input) are redone in double, then the
// parameter gradients, and the dx coefficients into ws.scale, ws.shift, ws.extra.
// visit(channel, f) calls f(i) for every index i of that channel. A loop per step, with the
// rare redo apart, so that GCC vectorizes them (one loop with the redo's branch in it stayed
// scalar): (60, 100) backward in cache 2.31 -> 2.13 us, from DRAM 8.1 -> 7.6 us.
template <class Visit>
void finish_grad_channels(const BatchNormBackwardArgs& a, const ChunkWorkspace& ws, Range chans,
                          i64 g0, bool sums, const ChannelCount& m, Visit&& visit) {
  double *s1 = ws.s1, *s2 = ws.s2;
  if (!sums) std::fill(s1 + chans.begin, s1 + chans.end, 0.0), std::fill(s2 + chans.begin, s2 + chans.end, 0.0);
  i64 non_finite = 0;
  for (i64 c = chans.begin; c < chans.end; ++c)
    non_finite += !finite(s1[c]) + !finite(s2[c]);
  for (i64 c = chans.begin; non_finite && c < chans.end; ++c) {
    if (finite2(s1[c], s2[c])) continue;
    double sdy = 0.0, sdyxm = 0.0;
    const double mean = a.mean[g0 + c];
    visit(g0 + c, [&](i64 i) {
      sdy += a.dy[i];
      sdyxm += static_cast<double>(a.dy[i]) * (a.x[i] - mean);
    });
    s1[c] = sdy, s2[c] = sdyxm;
  }
  accumulate_param_grads(a, g0 + chans.begin, chans.end - chans.begin, s1 + chans.begin, s2 + chans.begin);
  for (i64 c = chans.begin; c < chans.end; ++c) {
    const GradCoef q = grad_coefficients(a, g0 + c, s1[c], s2[c], m);
    ws.scale[c] = q.a, ws.shift[c] = q.b, ws.extra[c] = q.c;
  }
}

// Whether the op's tensors (tensors = inputs + outputs) are too big to all stay in the
// last-level cache, so that its inputs come from DRAM even when the layer before has just
// written them. Smaller ones are assumed in cache: a layer's input was just written.
inline bool beyond_llc(const BatchNormProblem& p, int tensors) {
  return p.numel() * 4 * tensors > static_cast<i64>(cpu_features().llc_bytes / 2);
}

// Where the op's data is: in DRAM (beyond half the LLC, or, from kResidencyMinBytes up, where
// timed loads find the input and the output there: sampled_residency; output may be the
// input, for an op that writes none), in cache (the timed loads find both there), or unknown
// (smaller calls are short and not timed; their data is taken to be in cache, as a layer's
// input was just written; or the input and the output are in different places). It decides
// the output stores (stream_outputs: DRAM only), the statistics' software prefetch (off in
// cache; small calls keep it, as it is cheap there and they may come from DRAM: off, (60, 100)
// forward_train and backward from DRAM took 1.10x and 1.15x the time, in cache 0.95-0.98x;
// dlopen A/B) and channels_last's row groups (rows_per_group: in cache only).
inline Residency data_residency(const BatchNormProblem& p, int tensors, const float* input,
                                const float* output) {
  if (beyond_llc(p, tensors)) return Residency::dram;
  const auto bytes = static_cast<std::size_t>(p.numel()) * sizeof(float);
  if (bytes < kResidencyMinBytes) return Residency::unknown;
  return sampled_residency(input, output, bytes);
}

// Whether to store the output non-temporally (OutputStores). They pay only when the output
// goes to DRAM anyway: then a normal store's read-for-ownership costs DRAM traffic and
// evicts inputs. An output that stays in cache, streamed, misses the cache for whoever reads
// it next (and the benchmark's hot runs), which costs far more than it saves (256x64x8x8
// channels_last forward_train in cache: 153 -> 235 us). So automatic streams where the data
// comes from DRAM (data_residency). `pays`: the layout's own condition for streaming to pay.
// dlopen A/B against size alone, x and y rotated through 256 MB (from DRAM), median time:
// channels_last forward_train 0.75-0.92x, forward_infer 0.79-0.84x, backward 0.88-1.05x;
// 256x64x8x8 channels_first 1.01x, 0.90x, 0.93x. In cache 0.98-1.04x (the timed loads cost
// about 0.1 us; 8x512x7x7 channels_last forward_infer 1.01x).
template <class V>
bool stream_outputs(OutputStores stores, bool pays, Residency residency) {
  if (!V::can_stream || stores == OutputStores::cached) return false;
  if (stores == OutputStores::streaming) return true;
  return pays && residency == Residency::dram;
}

// Inference transforms of channels c0 + j, j < n: out(j, Normalizer), y = (x - mean) *
// (gamma * invstd) + beta (x - mean first, so large offsets stay exact). invstd a block at a
// time (invstd_block): (60, 100) forward_infer in cache 1.2 -> 0.9 us.
template <class Out>
void infer_normalizers(const BatchNormForwardInferArgs& a, i64 c0, i64 n, Out&& out) {
  double invstd[kEpilogueBlock];
  for (i64 j0 = 0; j0 < n; j0 += kEpilogueBlock) {
    const i64 nb = std::min(kEpilogueBlock, n - j0), b = c0 + j0;
    if (a.var)
      invstd_block(a.var + b, nb, a.eps, invstd);
    else
      for (i64 j = 0; j < nb; ++j) invstd[j] = a.invstd[b + j];
    for (i64 j = 0; j < nb; ++j) {
      const double gamma = a.gamma ? a.gamma[b + j] : 1.0, beta = a.beta ? a.beta[b + j] : 0.0;
      out(j0 + j, Normalizer{a.mean[b + j], static_cast<float>(gamma * invstd[j]),
                             static_cast<float>(beta)});
    }
  }
}

}  // namespace
}  // namespace bnorm::cpu
