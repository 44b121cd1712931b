// channels_last (NHWC, and every (N, C) problem) half of the fast CPU batch norm; included by
// batchnorm_cpu_impl.hpp only. The tensor is R = N*S rows of C floats.
//
// Blocking: rows are cut into chunks (sizes from the problem only); channels go in groups
// of at most 2048 (one group almost always). Pass 2 re-reads x from L3 where it fits.
// Pass 1: each chunk's per-channel sums go to the workspace (one thread per chunk; float sums
// over 16 rows folded into double, see nhwc_chunk_sums_by_rows). Merge: per channel, the
// chunk partials in chunk order. Pass 2: row by row (so non-temporal stores fill whole
// lines), each thread over its chunks in reverse, most recently read first.
#pragma once

#include <bit>
#include <utility>

#include "kernels/cpu/batchnorm_cpu_common.hpp"

namespace bnorm::cpu {
namespace {

constexpr i64 kMaxGroup = 2048;  // channels per group (float accumulators on the stack)
constexpr i64 kFoldRows = 16;    // rows summed in float before a double fold

struct NhwcPlan {
  i64 rows, channels;
  i64 spatial;  // rows per image (1: each row is an example)
  i64 group;   // channels per group (a multiple of 16, or all of them)
  i64 chunks;  // row chunks: chunk i is rows [rows * i / chunks, rows * (i + 1) / chunks)
};

// Channel groups only bound the stack accumulators (kMaxGroup); a group of 16 channels
// out of 64 per row was tried to keep the slice in L3 and is 5x slower (strided sub-line
// reads defeat the prefetchers).
// Chunks: about kChunkBytes each, at most kMaxChunks, and a multiple of 8 from 8 up (a power
// of two below) so that 2, 4 and 8 threads get equal shares: 8x512x7x7 had 25 chunks of 16
// rows, 12 for one thread and 13 for the other, and 25 partial rows for the merge to read.
inline NhwcPlan nhwc_plan(const BatchNormProblem& p) {
  const i64 rows = p.batch * p.spatial, c = p.channels;
  const i64 group = std::min(c, kMaxGroup);
  i64 chunks = std::clamp<i64>(rows * group * 4 / kChunkBytes, 1, std::min(kMaxChunks, rows));
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
bool nhwc_stream(const BatchNormProblem& p, int tensors, const float* out) {
  return stream_outputs<V>(p, tensors) && p.channels % 8 == 0 && is_aligned(out, 32);
}

// Software prefetch into L2 of a contiguous range, a few lines per step: the rows the
// register-blocked pass 1 reads next, in memory order. That pass walks a fold of 16 rows block
// by block of channels, an order the hardware prefetchers do not follow from DRAM: without it,
// register-blocked sums were 1.6-2x slower than the row sweep on cold data (C = 256, 512).
struct RowPrefetch {
  const char* next = nullptr;
  const char* end = nullptr;
  i64 lines_per_step = 0;
  void step() {
    for (i64 i = 0; i < lines_per_step && next < end; ++i, next += 64) __builtin_prefetch(next, 0, 2);
  }
};

constexpr i64 kBlockVectors = 4;              // vectors of channels summed in registers at once
constexpr i64 kPrefetchAheadBytes = 16 << 10;  // the prefetch runs a fold or this far ahead
constexpr i64 kBlockedMinChannels = 128;       // register-blocked statistics from this many channels

// nhwc_chunk_sums_*: pass 1 over chunk `chunk`, channels [g0, g0 + gc): ws.s1/s2 row
// `chunk` = per-channel sums of term(o, c, acc1, acc2), which adds the value at offset o
// (some row, channel g0 + c: a vector of W channels, or the F1 lane) into acc1, acc2. Per
// channel: rows in memory order summed in float over folds of kFoldRows rows, each fold
// added into the double partial.
// Two loop orders (two functions) give bitwise the same sums:
//  - row sweep: row by row, the float accumulators of all gc channels in L1 (a load and a
//    store of each per row), reading memory strictly in order. (Four rows per load/store of
//    the accumulators was tried: 10% faster on hot (1024, 1024), 30% slower on cold
//    32x256x14x14: four interleaved streams.)
//  - register-blocked: per fold, block of kBlockVectors vectors of channels by block, the
//    accumulators in registers, with a software prefetch (RowPrefetch) of the rows ahead.
//    One thread, one chunk of statistics alone: 1.3x faster on data in cache, 20-30% faster
//    on data in DRAM for 256-1024 channels, as fast for 64. Used for forward statistics
//    from kBlockedMinChannels, and for every small problem (one thread, in cache: (60, 100)
//    forward_train 2.3 -> 2.1 us; on cold 256x64x8x8 and 32x64x56x56 nhwc, blocked was 3-5%
//    slower); backward keeps the row sweep, which was faster there on data in DRAM (two
//    input streams: 16 rows of dy and of x are 32 strided streams).

// Row `chunk` of ws.s1 and ws.s2 (the chunk's partials), cleared.
inline std::pair<double*, double*> chunk_partials(const NhwcPlan& pl, i64 chunk, i64 gc,
                                                  const ChunkWorkspace& ws) {
  double* s1 = ws.s1 + chunk * pl.group;
  double* s2 = ws.s2 + chunk * pl.group;
  std::fill(s1, s1 + gc, 0.0), std::fill(s2, s2 + gc, 0.0);
  return {s1, s2};
}

// The row sweep.
template <class V, class Term>
void nhwc_chunk_sums_by_rows(const NhwcPlan& pl, i64 chunk, i64 g0, i64 gc,
                             const ChunkWorkspace& ws, Term&& term) {
  constexpr int W = V::width;
  const Range r = chunk_rows(pl, chunk);
  const auto [s1, s2] = chunk_partials(pl, chunk, gc, ws);
  alignas(64) float a1[kMaxGroup], a2[kMaxGroup];
  for (i64 row0 = r.begin; row0 < r.end; row0 += kFoldRows) {
    std::fill(a1, a1 + gc, 0.0f), std::fill(a2, a2 + gc, 0.0f);
    for (i64 row = row0; row < std::min(r.end, row0 + kFoldRows); ++row) {
      const i64 o = row * pl.channels + g0;
      i64 c = 0;
      for (; c + W <= gc; c += W) {
        V p = V::load(a1 + c), q = V::load(a2 + c);
        term(o + c, c, p, q);
        V::store(a1 + c, p), V::store(a2 + c, q);
      }
      for (; c < gc; ++c) {
        F1 p = F1::load(a1 + c), q = F1::load(a2 + c);
        term(o + c, c, p, q);
        a1[c] = p.v, a2[c] = q.v;
      }
    }
    i64 c = 0;
    for (; c + W <= gc; c += W) V::add_to(s1 + c, V::load(a1 + c)), V::add_to(s2 + c, V::load(a2 + c));
    for (; c < gc; ++c) s1[c] += a1[c], s2[c] += a2[c];
  }
}

// Register-blocked; `stream` is the tensor term reads. The prefetch runs `ahead` rows (a
// fold, or kPrefetchAheadBytes) in front, spread evenly over the fold's (block, row) steps;
// only when the group is whole rows (gc == C, which is every C <= kMaxGroup), so that the
// rows ahead are contiguous.
template <class V, class Term>
void nhwc_chunk_sums_in_blocks(const NhwcPlan& pl, i64 chunk, i64 g0, i64 gc,
                               const float* stream, const ChunkWorkspace& ws, Term&& term) {
  constexpr int W = V::width;
  const Range r = chunk_rows(pl, chunk);
  const auto [s1, s2] = chunk_partials(pl, chunk, gc, ws);
  const i64 row_bytes = 4 * pl.channels;
  const i64 ahead = std::max(kFoldRows, (kPrefetchAheadBytes + row_bytes - 1) / row_bytes);
  const i64 blocks = gc / (kBlockVectors * W) + (gc % (kBlockVectors * W)) / W + gc % W;
  for (i64 row0 = r.begin; row0 < r.end; row0 += kFoldRows) {
    const i64 row1 = std::min(r.end, row0 + kFoldRows);
    RowPrefetch pf;
    if (gc == pl.channels) {
      const i64 p0 = std::min(pl.rows, row0 + ahead), p1 = std::min(pl.rows, row1 + ahead);
      const i64 lines = ((p1 - p0) * row_bytes + 63) / 64, steps = blocks * (row1 - row0);
      pf = {reinterpret_cast<const char*>(stream + p0 * pl.channels),
            reinterpret_cast<const char*>(stream + p1 * pl.channels), (lines + steps - 1) / steps};
    }
    // Channels [c, c + n * U::width) down the fold, into s1, s2.
    auto block = [&]<class U, int n>(i64 c) {
      U p[n], q[n];
      for (int j = 0; j < n; ++j) p[j] = U::zero(), q[j] = U::zero();
      RowPrefetch local = pf;  // no stores through memory inside the loop
      for (i64 row = row0, o = row0 * pl.channels + g0 + c; row < row1; ++row, o += pl.channels) {
        local.step();
        for (int j = 0; j < n; ++j) term(o + j * U::width, c + j * U::width, p[j], q[j]);
      }
      pf = local;
      for (int j = 0; j < n; ++j)
        U::add_to(s1 + c + j * U::width, p[j]), U::add_to(s2 + c + j * U::width, q[j]);
    };
    i64 c = 0;
    for (; c + kBlockVectors * W <= gc; c += kBlockVectors * W)
      block.template operator()<V, kBlockVectors>(c);
    for (; c + W <= gc; c += W) block.template operator()<V, 1>(c);
    for (; c < gc; ++c) block.template operator()<F1, 1>(c);
  }
}

// Statistics pass 1: s1 = sum (x - k), s2 = sum (x - k)^2 per channel, pivots k[gc].
template <class V>
void nhwc_chunk_shifted_sums(const float* x, const NhwcPlan& pl, i64 chunk, i64 g0, i64 gc,
                             const float* k, const ChunkWorkspace& ws) {
  auto term = [=]<class U>(i64 o, i64 c, U& a1, U& a2) {
    const U d = U::load(x + o) - U::load(k + c);
    a1 = a1 + d, a2 = U::fmadd(d, d, a2);
  };
  if (gc >= kBlockedMinChannels || !nhwc_parallel(pl))
    nhwc_chunk_sums_in_blocks<V>(pl, chunk, g0, gc, x, ws, term);
  else nhwc_chunk_sums_by_rows<V>(pl, chunk, g0, gc, ws, term);
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

// Pass 2 of forward: y = (x - k) * scale + shift, rows of chunk `chunk`, per-channel params.
template <class V, bool kStream>
void nhwc_chunk_normalize(const float* x, float* y, const NhwcPlan& pl, i64 chunk, i64 g0,
                          i64 gc, const float* k, const float* scale, const float* shift) {
  constexpr int W = V::width;
  const Range r = chunk_rows(pl, chunk);
  for (i64 row = r.begin; row < r.end; ++row) {
    const float* xr = x + row * pl.channels + g0;
    float* yr = y + row * pl.channels + g0;
    i64 c = 0;
    for (; c + W <= gc; c += W) {
      const V v = V::fmadd(V::load(xr + c) - V::load(k + c), V::load(scale + c), V::load(shift + c));
      if constexpr (kStream) V::stream(yr + c, v);
      else V::store(yr + c, v);
    }
    for (; c < gc; ++c) yr[c] = (xr[c] - k[c]) * scale[c] + shift[c];
  }
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
  const NhwcPlan pl = nhwc_plan(a.problem);
  if (nhwc_stream<V>(a.problem, 2, a.y)) nhwc_forward_train_impl<V, true>(a, pl);
  else nhwc_forward_train_impl<V, false>(a, pl);
}

template <class V>
void nhwc_moments(const BatchNormProblem& p, const float* x, ChannelMoments out,
                  std::span<std::byte> workspace) {
  // The statistics pass of forward_train, in the same workspace. (Before the workspace was an
  // argument, the partials lived on the stack, 64 channels at a time: a pass over x per 64
  // channels, 2.2x slower than channels_first on cold 32x256x14x14.)
  const NhwcPlan pl = nhwc_plan(p);
  const ChunkWorkspace ws = nhwc_workspace(workspace, pl);
  const ChannelCount m = channel_count(pl.rows);
  std::atomic<i64> redo{-1};
  run_team(nhwc_parallel(pl), [&](int t, int threads) {
    for (i64 g0 = 0; g0 < pl.channels; g0 += pl.group) {
      const i64 gc = std::min(pl.group, pl.channels - g0);
      nhwc_group_statistics<V>(x, pl, g0, gc, ws, t, threads, redo, [&](Range r) {
        for (i64 c = r.begin; c < r.end; ++c)
          out.mean[g0 + c] = ws.mean[c], out.m2[g0 + c] = ws.var[c] * m.n;
      });
    }
  });
}

// Inference parameters of up to kInferGroup channels at a time, on the stack.
constexpr i64 kInferGroup = 1024;

template <class V, bool kStream>
void nhwc_forward_infer_impl(const BatchNormForwardInferArgs& a) {
  const BatchNormProblem& p = a.problem;
  NhwcPlan pl = nhwc_plan(p);
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
  if (nhwc_stream<V>(a.problem, 2, a.y)) nhwc_forward_infer_impl<V, true>(a);
  else nhwc_forward_infer_impl<V, false>(a);
}

// Backward pass 1 over a chunk: sdy = sum dy, sdyxm = sum dy (x - mean) per channel.
template <class V>
void nhwc_chunk_grad_sums(const BatchNormBackwardArgs& a, const NhwcPlan& pl, i64 chunk, i64 g0,
                          i64 gc, const ChunkWorkspace& ws) {
  const float* mean = a.mean + g0;
  const float *dy = a.dy, *x = a.x;
  nhwc_chunk_sums_by_rows<V>(pl, chunk, g0, gc, ws, [=]<class U>(i64 o, i64 c, U& a1, U& a2) {
    const U g = U::load(dy + o);
    a1 = a1 + g, a2 = U::fmadd(g, U::load(x + o) - U::load(mean + c), a2);
  });
}

// Backward pass 2 over a chunk: dx = a * dy + (b * (x - mean) + c); frozen: dx = a * dy.
template <class V, bool kStream, bool kFrozen>
void nhwc_chunk_grad_dx(const BatchNormBackwardArgs& g, const NhwcPlan& pl, i64 chunk, i64 g0,
                        i64 gc, const ChunkWorkspace& ws) {
  constexpr int W = V::width;
  const Range r = chunk_rows(pl, chunk);
  const float *mean = g.mean + g0, *qa = ws.scale, *qb = ws.shift, *qc = ws.extra;
  for (i64 row = r.begin; row < r.end; ++row) {
    const i64 o = row * pl.channels + g0;
    const float *x = g.x + o, *dy = g.dy + o;
    float* dx = g.dx + o;
    i64 c = 0;
    for (; c + W <= gc; c += W) {
      V v;
      if constexpr (kFrozen)
        v = V::load(qa + c) * V::load(dy + c);
      else
        v = V::fmadd(V::load(qa + c), V::load(dy + c),
                     V::fmadd(V::load(qb + c), V::load(x + c) - V::load(mean + c), V::load(qc + c)));
      if constexpr (kStream) V::stream(dx + c, v);
      else V::store(dx + c, v);
    }
    for (; c < gc; ++c)
      dx[c] = kFrozen ? qa[c] * dy[c] : qa[c] * dy[c] + (qb[c] * (x[c] - mean[c]) + qc[c]);
  }
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
  const NhwcPlan pl = nhwc_plan(a.problem);
  if (a.mask.dx && nhwc_stream<V>(a.problem, 3, a.dx)) nhwc_backward_impl<V, true>(a, pl);
  else nhwc_backward_impl<V, false>(a, pl);
}

}  // namespace
}  // namespace bnorm::cpu
