// channels_last (NHWC, and every (N, C) problem) half of the fast CPU batch norm; included by
// batchnorm_cpu_impl.hpp only. The tensor is R = N*S rows of C floats.
//
// Blocking: rows are cut into chunks (sizes from the problem only); channels go in groups
// of at most 2048 (one group almost always). Pass 2 re-reads x from L3 where it fits.
// Pass 1: each chunk's per-channel sums go to the workspace (one thread per chunk; float sums
// over kFoldSteps rows folded into double, see nhwc_chunk_sums). Merge: per channel, the
// chunk partials in chunk order. Pass 2: row by row (so non-temporal stores fill whole
// lines), each thread over its chunks in reverse, most recently read first.
#pragma once

#include <array>
#include <bit>

#include "kernels/cpu/batchnorm_cpu_common.hpp"

namespace bnorm::cpu {
namespace {

constexpr i64 kMaxGroup = 2048;  // channels per group (float accumulators on the stack)
constexpr i64 kMinChunkRows = 128;  // rows per chunk, once there are 8 chunks

struct NhwcPlan {
  i64 rows, channels;
  i64 spatial;  // rows per image (1: each row is an example)
  i64 group;   // channels per group (a multiple of 16, or all of them)
  i64 chunks;  // row chunks: chunk i is rows [rows * i / chunks, rows * (i + 1) / chunks)
  Residency residency = Residency::unknown;  // data_residency: pass 1's prefetch, pass 2's row groups
};

// Channel groups only bound the stack accumulators (kMaxGroup); a group of 16 channels
// out of 64 per row was tried to keep the slice in L3 and is 5x slower (strided sub-line
// reads defeat the prefetchers).
// Chunks: about kChunkBytes each, at most kMaxChunks, and a multiple of 8 from 8 up (a power
// of two below) so that 2, 4 and 8 threads get equal shares: 8x512x7x7 had 25 chunks of 16
// rows, 12 for one thread and 13 for the other, and 25 partial rows for the merge to read.
// Beyond 8 chunks, each chunk has at least kMinChunkRows rows: the merge reads a row of
// double partials per chunk (16 bytes a channel against 4 a row), and wide rows made it, the
// clearing and the folds a third of the statistics (1024 rows of 1024: 32 chunks of 32 rows).
inline NhwcPlan nhwc_plan(const BatchNormProblem& p) {
  const i64 rows = p.batch * p.spatial, c = p.channels;
  const i64 group = std::min(c, kMaxGroup);
  i64 chunks = std::clamp<i64>(rows * group * 4 / kChunkBytes, 1, std::min(kMaxChunks, rows));
  chunks = std::min(chunks, std::max<i64>(8, rows / kMinChunkRows));
  chunks = chunks >= 8 ? chunks / 8 * 8 : std::bit_floor(static_cast<std::uint64_t>(chunks));
  return {rows, c, p.spatial, group, chunks};
}

inline std::size_t nhwc_workspace_bytes(const NhwcPlan& pl) {
  return chunk_workspace_bytes(pl.chunks, pl.group);
}

inline ChunkWorkspace nhwc_workspace(std::span<std::byte> bytes, const NhwcPlan& pl) {
  return chunk_workspace(bytes, pl.chunks, pl.group);
}

inline Range chunk_rows(const NhwcPlan& pl, i64 chunk) {
  return share(pl.rows, static_cast<int>(chunk), static_cast<int>(pl.chunks));
}

// Small problems run on one thread, and their data is in cache (a layer's input was just written).
inline bool nhwc_parallel(const NhwcPlan& pl) { return pl.rows * pl.channels >= kParallelMinElems; }

// Non-temporal stores need every row's vectors 32-byte aligned.
template <class V>
bool nhwc_stream(const BatchNormProblem& p, OutputStores stores, Residency residency,
                 const float* output) {
  return p.channels % 8 == 0 && is_aligned(output, 32) && stream_outputs<V>(stores, true, residency);
}

constexpr i64 kSweepRows = 4;                 // rows added per load/store of the accumulators

// Pass 1 over chunk `chunk`, channels [g0, g0 + gc): ws.s1/s2 row `chunk` = per-channel sums
// of term(o, c, acc1, acc2), which adds the value at offset o (some row, channel g0 + c: a
// vector of W channels, or the F1 lane) into acc1, acc2. Per channel: rows in memory order
// summed in float over folds of kFoldSteps rows, each fold added into the double partial
// (folds of 16 rows instead: 1.01-1.07x the time in cache, the same from DRAM; each fold
// reads and writes the chunk's partials, 16 bytes a channel).
// Loop order: the float accumulators of all gc channels live in L1; kSweepRows rows at a time
// are added into them, vector of channels by vector (a load and a store of each accumulator
// per kSweepRows rows), with a software prefetch, kPrefetchAheadBytes ahead and in memory
// order, of as many lines as each step reads (the interleaved row streams lose the hardware
// prefetchers on data in DRAM). `streams` are the tensors term reads; the prefetch only runs
// where the data is not known to be in cache (pl.residency: in cache it only costs, dlopen
// A/B without it, forward_train and backward 0.89-0.96x the time, 32x256x14x14 the same) and
// where the group is whole rows (gc == C, every C <= kMaxGroup), so the rows ahead are
// contiguous. One thread, statistics of 4 MiB, micro-benchmark, us, this order / one row per
// sweep / register-blocked folds of 16 rows x 4 vectors with prefetch (this file's order for
// C >= 128 and every small problem before): (1024, 1024) hot 98 / 127 / 163, cold 201 / 215
// / 272; 6272 x 256 hot 98 / 145 / 162, cold 349 / 392 / 805.
template <class V, std::size_t kStreams, class Term>
void nhwc_chunk_sums(const NhwcPlan& pl, i64 chunk, i64 g0, i64 gc,
                     std::array<const float*, kStreams> streams, const ChunkWorkspace& ws,
                     Term&& term) {
  constexpr int W = V::width;
  const Range r = chunk_rows(pl, chunk);
  double* s1 = ws.s1 + chunk * pl.group;  // row `chunk` of the partials
  double* s2 = ws.s2 + chunk * pl.group;
  const i64 C = pl.channels;
  const bool prefetch = pl.residency != Residency::cache && gc == C;
  alignas(64) float a1[kMaxGroup], a2[kMaxGroup];
  // Adds rows [row, row + n) into a1, a2 (kFirst: the fold's first rows, into zero); the
  // prefetch covers the same bytes further on.
  auto sweep = [&]<int n, bool kFirst>(i64 row) {
    constexpr i64 lines_per_step = std::max(1, n * W * 4 / 64);
    const i64 o = row * C + g0;
    const i64 ahead = (row + n) * C * 4 + kPrefetchAheadBytes;  // bytes into each stream
    const i64 end = pl.rows * C * 4;
    auto add_rows = [&]<class U>(i64 c) {
      U p = kFirst ? U::zero() : U::load(a1 + c), q = kFirst ? U::zero() : U::load(a2 + c);
      for (int u = 0; u < n; ++u) term(o + u * C + c, c, p, q);
      U::store(a1 + c, p), U::store(a2 + c, q);
    };
    i64 c = 0;
    for (; c + W <= gc; c += W) {
      // The step's prefetch offset from c, not a running sum, and `streams` by value: GCC kept
      // the sum on the stack (a store-to-load chain through every step) and reloaded the
      // pointers. dlopen A/B in cache: statistics 0.91-0.95x the time, forward_train 0.95x.
      if (prefetch)
        for (i64 l = 0, at = ahead + c / W * lines_per_step * 64; l < lines_per_step && at < end; ++l, at += 64)
          for (const float* s : streams) __builtin_prefetch(reinterpret_cast<const char*>(s) + at, 0, 2);
      add_rows.template operator()<V>(c);
    }
    for (; c < gc; ++c) add_rows.template operator()<F1>(c);
  };
  for (i64 row0 = r.begin; row0 < r.end; row0 += kFoldSteps) {
    const i64 row1 = std::min(r.end, row0 + kFoldSteps);
    i64 row = row0;
    if (row + kSweepRows <= row1) {
      sweep.template operator()<kSweepRows, true>(row), row += kSweepRows;
      for (; row + kSweepRows <= row1; row += kSweepRows) sweep.template operator()<kSweepRows, false>(row);
    } else {
      sweep.template operator()<1, true>(row), ++row;
    }
    for (; row < row1; ++row) sweep.template operator()<1, false>(row);
    const bool first = row0 == r.begin;  // stores into the partials, later folds add
    i64 c = 0;
    for (; c + W <= gc; c += W)
      store_or_add(s1 + c, V::load(a1 + c), first), store_or_add(s2 + c, V::load(a2 + c), first);
    for (; c < gc; ++c)
      store_or_add(s1 + c, F1::load(a1 + c), first), store_or_add(s2 + c, F1::load(a2 + c), first);
  }
}

// Statistics pass 1: s1 = sum (x - k), s2 = sum (x - k)^2 per channel, pivots k[gc].
template <class V>
void nhwc_chunk_shifted_sums(const float* x, const NhwcPlan& pl, i64 chunk, i64 g0, i64 gc,
                             const float* k, const ChunkWorkspace& ws) {
  alignas(64) float neg_k[kMaxGroup];
  negate(k, gc, neg_k);
  const float* nk = neg_k;
  auto term = [=]<class U>(i64 o, i64 c, U& a1, U& a2) {
    const U d = deviation(U::load(x + o), U::load(nk + c));
    a1 = a1 + d, a2 = U::fmadd(d, d, a2);
  };
  nhwc_chunk_sums<V, 1>(pl, chunk, g0, gc, {x}, ws, term);
}

// Statistics of the group [g0, g0 + gc) over all rows (chunked_statistics; ends with a
// barrier). Pivots: the mean of 16 rows; a poor one re-sums the group, a second pass over x.
// With the first row as pivot, 8x512x7x7, (1024, 1024) and 32x256x14x14 forward_train on
// normal data were 1.6x slower than on uniform data (bounded, never 2 std out), 2.5x with 2
// threads. Rows that are pixels (S > 1) are sampled spread over the batch, as neighbouring
// pixels are alike; rows that are examples of a (shuffled) batch (S = 1) are independent,
// and the first 16 are contiguous: spread ones cost 1.8 us more on cold (60, 100).
template <class V, class Done>
void nhwc_group_statistics(const float* x, const NhwcPlan& pl, i64 g0, i64 gc,
                           const ChunkWorkspace& ws, int t, int threads,
                           std::atomic<i64>& redo, Done&& done) {
  const ChannelCount m = channel_count(pl.rows);
  const i64 samples = std::min(pl.rows, kPivotSamples);
  const i64 sample_step = pl.spatial == 1 ? 1 : pl.rows / samples;
  chunked_statistics(
      gc, m, ws, t, threads, redo, g0, samples,
      [&](i64 c, i64 j) { return x[j * sample_step * pl.channels + g0 + c]; },
      [&](i64 chunk, const float* k) { nhwc_chunk_shifted_sums<V>(x, pl, chunk, g0, gc, k, ws); },
      [](i64, float, double&, double&) { return false; },
      [&](i64 c) {
        return mean_var_double(x + g0 + c, m, [&](auto f) {
          for (i64 row = 0; row < pl.rows; ++row) f(row * pl.channels);
        });
      },
      done);
}

// Pass 2 (forward and backward) writes a chunk's rows a few at a time, each per-channel
// constant loaded once for all of them: a row's vector step loads 3 or 4 parameter vectors
// next to its one or two tensor vectors, so one row at a time is bound by the loads.
// rows_per_group, from dlopen A/B (median time):
// - unless the data is known to be in cache (pl.residency): pairs where rows are up to
//   kPairMaxRowBytes. Against one row, in cache 256x64x8x8 forward_infer 0.78x, backward
//   0.85-0.87x, (60, 100) 0.81x and 0.87-0.88x; from DRAM 0.98-0.99x. Longer rows in pairs
//   were slower from DRAM (two interleaved write streams: 32x256x14x14 forward 1.35x,
//   backward 1.11x; 8x512x7x7 forward_infer 1.43x).
// - input and output in cache: as many rows (4, 2) as keep a group within kGroupMaxStreams
//   tensor rows and kGroupMaxBytes. Against the above: forward (x, y) in fours up to 2 KiB
//   rows, forward_infer 0.78-0.90x (8x512x7x7, 256x64x8x8, 32x256x14x14 channels_last; one
//   run of the last 0.98x), forward_train 0.89-0.97x (32x256x14x14 0.97-1.04x); (1024, 1024)
//   (4 KiB rows) in pairs, forward_infer 0.78-0.90x, as in fours its forward_train took
//   1.07x. Backward (x, dy, dx) in pairs: 8x512x7x7 0.95-0.98x, 32x256x14x14 and (1024, 1024)
//   1.0x; in fours 1.04-1.24x. With the input in cache and the output in DRAM, groups took
//   1.07-2.1x the time, hence both (sampled_residency). Small calls (residency unknown) keep
//   pairs: (60, 100) forward_infer in fours took 0.81x the time in cache but 1.3-1.5x in the
//   benchmark's cold runs.
constexpr i64 kPairMaxRowBytes = 512;
constexpr i64 kGroupMaxStreams = 8;
constexpr i64 kGroupMaxBytes = 16 << 10;

// Rows of one group in pass 2: row_bytes of each of `tensors` tensors per row.
inline int rows_per_group(const NhwcPlan& pl, i64 row_bytes, int tensors) {
  if (pl.residency != Residency::cache) return row_bytes <= kPairMaxRowBytes ? 2 : 1;
  for (int n = 4; n > 1; n /= 2)
    if (n * tensors <= kGroupMaxStreams && n * tensors * row_bytes <= kGroupMaxBytes) return n;
  return 1;
}

// The rows of a chunk in groups of n (rows_per_group), the last ones one at a time:
// rows.template operator()<n>(row) for rows row .. row + n - 1. Streamed, groups of four are
// not compiled: with them, the streamed passes took 1.03-1.30x the time (dlopen A/B).
template <bool kStream, class Rows>
void chunk_row_groups(Range r, int n, Rows&& rows) {
  i64 row = r.begin;
  if constexpr (!kStream)
    if (n == 4)
      for (; row + 4 <= r.end; row += 4) rows.template operator()<4>(row);
  if (n >= 2)
    for (; row + 2 <= r.end; row += 2) rows.template operator()<2>(row);
  for (; row < r.end; ++row) rows.template operator()<1>(row);
}

// Elementwise steps along a row, channels [0, n): step.template operator()<U>(c) for every
// whole vector (U = V) kRowUnroll vectors per loop iteration, then for the last n % W channels
// (U = F1). Each vector step of a row loads its per-channel parameters (3 or 4 vectors) next
// to the tensor's: unrolled, the loop's own uops go and more of the tensor's loads fit the
// out-of-order window. dlopen A/B, four per iteration / one, the time from DRAM: 32x256x14x14
// forward_infer 0.85-0.92x, forward_train 0.89x; 256x64x8x8 backward 0.92x; other shapes,
// and all in cache, 0.96-1.01x. Eight per iteration were no better.
constexpr int kRowUnroll = 4;
template <class V, class Step>
void row_steps(i64 n, Step&& step) {
  constexpr int W = V::width;
  i64 c = 0;
  for (; c + kRowUnroll * W <= n; c += kRowUnroll * W)
    for (int u = 0; u < kRowUnroll; ++u) step.template operator()<V>(c + u * W);
  for (; c + W <= n; c += W) step.template operator()<V>(c);
  for (; c < n; ++c) step.template operator()<F1>(c);
}

// Pass 2 of forward: y = (x - k) * scale + shift, rows of chunk `chunk`, per-channel params,
// a few rows at a time (rows_per_group).
template <class V, bool kStream>
void nhwc_chunk_normalize(const float* x, float* y, const NhwcPlan& pl, i64 chunk, i64 g0,
                          i64 gc, const float* k, const float* scale, const float* shift) {
  const Range r = chunk_rows(pl, chunk);
  const i64 C = pl.channels;
  auto rows = [&]<int n>(i64 row) {
    const float* xr = x + row * C + g0;
    float* yr = y + row * C + g0;
    auto step = [&]<class U>(i64 c) {
      const U kk = U::load(k + c), ss = U::load(scale + c), bb = U::load(shift + c);
      for (int u = 0; u < n; ++u) {
        const U v = U::fmadd(U::load(xr + u * C + c) - kk, ss, bb);
        if constexpr (kStream) U::stream(yr + u * C + c, v);
        else U::store(yr + u * C + c, v);
      }
    };
    row_steps<V>(gc, step);
  };
  chunk_row_groups<kStream>(r, rows_per_group(pl, gc * 4, 2), rows);
}

template <class V, bool kStream>
void nhwc_forward_train_impl(const BatchNormForwardTrainArgs& a, const NhwcPlan& pl) {
  const ChunkWorkspace ws = nhwc_workspace(a.workspace, pl);
  const ChannelCount m = channel_count(pl.rows);
  std::atomic<i64> redo{-1};
  run_team(nhwc_parallel(pl), [&](int t, int threads) {
    const Range mine = share(pl.chunks, t, threads);
    for (i64 g0 = 0; g0 < pl.channels; g0 += pl.group) {
      const i64 gc = std::min(pl.group, pl.channels - g0);
      nhwc_group_statistics<V>(a.x, pl, g0, gc, ws, t, threads, redo, [&](Range r) {
        finalize_channels(a, g0, r, ws.mean, ws.var, m, [&](i64 c, Normalizer z) {
          ws.k[c] = z.k, ws.scale[c] = z.scale, ws.shift[c] = z.shift;
        });
      });
      for (i64 chunk = mine.end - 1; chunk >= mine.begin; --chunk)
        nhwc_chunk_normalize<V, kStream>(a.x, a.y, pl, chunk, g0, gc, ws.k, ws.scale, ws.shift);
      team_barrier(threads);  // the next group reuses the workspace
    }
    if constexpr (kStream) V::fence();
  });
}

template <class V>
void nhwc_forward_train(const BatchNormForwardTrainArgs& a) {
  NhwcPlan pl = nhwc_plan(a.problem);
  pl.residency = data_residency(a.problem, 2, a.x, a.y);
  if (nhwc_stream<V>(a.problem, a.stores, pl.residency, a.y)) nhwc_forward_train_impl<V, true>(a, pl);
  else nhwc_forward_train_impl<V, false>(a, pl);
}

template <class V>
void nhwc_moments(const BatchNormProblem& p, const float* x, ChannelMoments out,
                  std::span<std::byte> workspace) {
  // The statistics pass of forward_train, in the same workspace. (Before the workspace was an
  // argument, the partials lived on the stack, 64 channels at a time: a pass over x per 64
  // channels, 2.2x slower than channels_first on cold 32x256x14x14.)
  NhwcPlan pl = nhwc_plan(p);
  pl.residency = data_residency(p, 1, x, x);
  const ChunkWorkspace ws = nhwc_workspace(workspace, pl);
  const ChannelCount m = channel_count(pl.rows);
  std::atomic<i64> redo{-1};
  run_team(nhwc_parallel(pl), [&](int t, int threads) {
    for (i64 g0 = 0; g0 < pl.channels; g0 += pl.group) {
      const i64 gc = std::min(pl.group, pl.channels - g0);
      nhwc_group_statistics<V>(x, pl, g0, gc, ws, t, threads, redo,
                               [&](Range r) { write_moments(out, g0, r, ws.mean, ws.var, m); });
    }
  });
}

// Inference parameters of up to kInferGroup channels at a time, on the stack.
constexpr i64 kInferGroup = 1024;

template <class V, bool kStream>
void nhwc_forward_infer_impl(const BatchNormForwardInferArgs& a, const NhwcPlan& pl) {
  alignas(64) float k[kInferGroup], scale[kInferGroup], shift[kInferGroup];
  for (i64 g0 = 0; g0 < pl.channels; g0 += kInferGroup) {
    const i64 gc = std::min(kInferGroup, pl.channels - g0);
    infer_normalizers(a, g0, gc, [&](i64 c, Normalizer z) {
      k[c] = z.k, scale[c] = z.scale, shift[c] = z.shift;
    });
    run_team(nhwc_parallel(pl), [&](int t, int threads) {
      const Range mine = share(pl.chunks, t, threads);
      for (i64 chunk = mine.begin; chunk < mine.end; ++chunk)
        nhwc_chunk_normalize<V, kStream>(a.x, a.y, pl, chunk, g0, gc, k, scale, shift);
      if constexpr (kStream) V::fence();
    });
  }
}

template <class V>
void nhwc_forward_infer(const BatchNormForwardInferArgs& a) {
  NhwcPlan pl = nhwc_plan(a.problem);
  pl.residency = data_residency(a.problem, 2, a.x, a.y);
  if (nhwc_stream<V>(a.problem, a.stores, pl.residency, a.y)) nhwc_forward_infer_impl<V, true>(a, pl);
  else nhwc_forward_infer_impl<V, false>(a, pl);
}

// Backward pass 1 over a chunk: sdy = sum dy, sdyxm = sum dy (x - mean) per channel.
template <class V>
void nhwc_chunk_grad_sums(const BatchNormBackwardArgs& a, const NhwcPlan& pl, i64 chunk, i64 g0,
                          i64 gc, const ChunkWorkspace& ws) {
  alignas(64) float neg_mean[kMaxGroup];
  negate(a.mean + g0, gc, neg_mean);
  const float *dy = a.dy, *x = a.x, *nm = neg_mean;
  nhwc_chunk_sums<V, 2>(pl, chunk, g0, gc, {dy, x}, ws, [=]<class U>(i64 o, i64 c, U& a1, U& a2) {
    const U g = U::load(dy + o);
    a1 = a1 + g, a2 = U::fmadd(g, deviation(U::load(x + o), U::load(nm + c)), a2);
  });
}

// Backward pass 2 over a chunk: dx = a * dy + (b * (x - mean) + c); frozen: dx = a * dy; a
// few rows at a time (rows_per_group).
template <class V, bool kStream, bool kFrozen>
void nhwc_chunk_grad_dx(const BatchNormBackwardArgs& g, const NhwcPlan& pl, i64 chunk, i64 g0,
                        i64 gc, const ChunkWorkspace& ws) {
  const Range r = chunk_rows(pl, chunk);
  const i64 C = pl.channels;
  const float *mean = g.mean + g0, *qa = ws.scale, *qb = ws.shift, *qc = ws.extra;
  auto rows = [&]<int n>(i64 row) {
    const i64 o = row * C + g0;
    const float *x = g.x + o, *dy = g.dy + o;
    float* dx = g.dx + o;
    row_steps<V>(gc, [&]<class U>(i64 c) {
      const U a = U::load(qa + c);
      U b, m, k;
      if constexpr (!kFrozen) b = U::load(qb + c), m = U::load(mean + c), k = U::load(qc + c);
      for (int u = 0; u < n; ++u) {
        U v;
        if constexpr (kFrozen)
          v = a * U::load(dy + u * C + c);
        else
          v = U::fmadd(a, U::load(dy + u * C + c), U::fmadd(b, U::load(x + u * C + c) - m, k));
        if constexpr (kStream) U::stream(dx + u * C + c, v);
        else U::store(dx + u * C + c, v);
      }
    });
  };
  chunk_row_groups<kStream>(r, rows_per_group(pl, gc * 4, 3), rows);
}

template <class V, bool kStream>
void nhwc_backward_impl(const BatchNormBackwardArgs& a, const NhwcPlan& pl) {
  const ChunkWorkspace ws = nhwc_workspace(a.workspace, pl);
  const ChannelCount m = channel_count(pl.rows);
  const bool sums = backward_needs_sums(a);
  const bool frozen = a.statistics == BatchNormStatistics::frozen;
  run_team(nhwc_parallel(pl), [&](int t, int threads) {
    const Range mine = share(pl.chunks, t, threads);
    for (i64 g0 = 0; g0 < pl.channels; g0 += pl.group) {
      const i64 gc = std::min(pl.group, pl.channels - g0);
      const Range chans = share(gc, t, threads);
      if (sums) {
        for (i64 chunk = mine.begin; chunk < mine.end; ++chunk)
          nhwc_chunk_grad_sums<V>(a, pl, chunk, g0, gc, ws);
        team_barrier(threads);
        chunk_merge(ws, chans);
      }
      finish_grad_channels(a, ws, chans, g0, sums, m, [&](i64 c, auto&& f) {
        for (i64 row = 0; row < pl.rows; ++row) f(row * pl.channels + c);
      });
      if (a.mask.dx) {
        team_barrier(threads);
        for (i64 chunk = mine.end - 1; chunk >= mine.begin; --chunk) {
          if (frozen) nhwc_chunk_grad_dx<V, kStream, true>(a, pl, chunk, g0, gc, ws);
          else nhwc_chunk_grad_dx<V, kStream, false>(a, pl, chunk, g0, gc, ws);
        }
      }
      team_barrier(threads);  // the next group reuses the workspace
    }
    if constexpr (kStream) V::fence();
  });
}

template <class V>
void nhwc_backward(const BatchNormBackwardArgs& a) {
  NhwcPlan pl = nhwc_plan(a.problem);
  pl.residency = data_residency(a.problem, 3, a.dy, a.mask.dx ? a.dx : a.x);  // x: no output
  if (a.mask.dx && nhwc_stream<V>(a.problem, a.stores, pl.residency, a.dx))
    nhwc_backward_impl<V, true>(a, pl);
  else nhwc_backward_impl<V, false>(a, pl);
}

}  // namespace
}  // namespace bnorm::cpu
