// channels_last (NHWC, and every (N, C) problem) half of the fast CPU batch norm; included by
// batchnorm_cpu_impl.hpp only. The tensor is R = N*S rows of C floats.
//
// Blocking: rows are cut into chunks (sizes from the problem only); channels go in groups
// of at most 2048 (one group almost always). Pass 2 re-reads x from L3 where it fits.
// Pass 1: each chunk's per-channel sums go to the workspace (one thread per chunk, rows in
// memory order, float accumulators per channel in L1 folded into double every 16 rows). Merge: per channel, the
// chunk partials in chunk order. Pass 2: row by row (so non-temporal stores fill whole
// lines), each thread over its chunks in reverse, most recently read first.
#pragma once

#include "kernels/cpu/batchnorm_cpu_common.hpp"

namespace bnorm::cpu {
namespace {

constexpr i64 kMaxGroup = 2048;  // channels per group (float accumulators on the stack)
constexpr i64 kFoldRows = 16;    // rows summed in float before a double fold

struct NhwcPlan {
  i64 rows, channels;
  i64 group;       // channels per group (a multiple of 16, or all of them)
  i64 chunk_rows;  // rows per chunk
  i64 chunks;
};

// Channel groups only bound the stack accumulators (kMaxGroup); a group of 16 channels
// out of 64 per row was tried to keep the slice in L3 and is 5x slower (strided sub-line
// reads defeat the prefetchers).
inline NhwcPlan nhwc_plan(const BatchNormProblem& p) {
  const i64 rows = p.batch * p.spatial, c = p.channels;
  const i64 group = std::min(c, kMaxGroup);
  i64 chunk_rows = std::max(kChunkBytes / (4 * group), (rows + kMaxChunks - 1) / kMaxChunks);
  chunk_rows = std::min(rows, std::max<i64>(4, (chunk_rows + 3) / 4 * 4));
  return {rows, c, group, chunk_rows, (rows + chunk_rows - 1) / chunk_rows};
}

inline std::size_t nhwc_workspace_bytes(const NhwcPlan& pl) {
  return chunk_workspace_bytes(pl.chunks, pl.group);
}

inline ChunkWorkspace nhwc_workspace(std::span<std::byte> bytes, const NhwcPlan& pl) {
  return chunk_workspace(bytes, pl.chunks, pl.group);
}

inline Range chunk_rows(const NhwcPlan& pl, i64 chunk) {
  return {chunk * pl.chunk_rows, std::min(pl.rows, (chunk + 1) * pl.chunk_rows)};
}

inline bool nhwc_parallel(const BatchNormProblem& p) { return p.numel() >= kParallelMinElems; }

// Non-temporal stores need every row's vectors 32-byte aligned.
template <class V>
bool nhwc_stream(const BatchNormProblem& p, int tensors, const float* out) {
  return stream_outputs<V>(p, tensors) && p.channels % 8 == 0 && is_aligned(out, 32);
}

// Pass 1 over chunk `chunk`, channels [g0, g0 + gc): ws.s1/s2 row `chunk` = per-channel sums
// of term(row, c, acc1, acc2), which adds row `row`, channel g0 + c (a vector of W channels,
// or the F1 lane) into acc1, acc2. Rows in memory order into float accumulators per channel
// (in L1), folded into double every kFoldRows rows. (Four rows per load/store of the
// accumulators was tried: 10% faster on hot (1024, 1024), 30% slower on cold 32x256x14x14.)
template <class V, class Term>
void nhwc_chunk_sums(const NhwcPlan& pl, i64 chunk, i64 gc, const ChunkWorkspace& ws,
                     Term&& term) {
  constexpr int W = V::width;
  const Range r = chunk_rows(pl, chunk);
  double* s1 = ws.s1 + chunk * pl.group;
  double* s2 = ws.s2 + chunk * pl.group;
  std::fill(s1, s1 + gc, 0.0), std::fill(s2, s2 + gc, 0.0);
  alignas(64) float a1[kMaxGroup], a2[kMaxGroup];
  for (i64 row0 = r.begin; row0 < r.end; row0 += kFoldRows) {
    std::fill(a1, a1 + gc, 0.0f), std::fill(a2, a2 + gc, 0.0f);
    for (i64 row = row0; row < std::min(r.end, row0 + kFoldRows); ++row) {
      i64 c = 0;
      for (; c + W <= gc; c += W) {
        V p = V::load(a1 + c), q = V::load(a2 + c);
        term(row, c, p, q);
        V::store(a1 + c, p), V::store(a2 + c, q);
      }
      for (; c < gc; ++c) {
        F1 p = F1::load(a1 + c), q = F1::load(a2 + c);
        term(row, c, p, q);
        a1[c] = p.v, a2[c] = q.v;
      }
    }
    i64 c = 0;
    for (; c + W <= gc; c += W) V::add_to(s1 + c, V::load(a1 + c)), V::add_to(s2 + c, V::load(a2 + c));
    for (; c < gc; ++c) s1[c] += a1[c], s2[c] += a2[c];
  }
}

// Statistics pass 1: s1 = sum (x - k), s2 = sum (x - k)^2 per channel, pivots k[gc].
template <class V>
void nhwc_chunk_shifted_sums(const float* x, const NhwcPlan& pl, i64 chunk, i64 g0, i64 gc,
                             const float* k, const ChunkWorkspace& ws) {
  nhwc_chunk_sums<V>(pl, chunk, gc, ws, [&]<class U>(i64 row, i64 c, U& a1, U& a2) {
    const U d = U::load(x + row * pl.channels + g0 + c) - U::load(k + c);
    a1 = a1 + d, a2 = U::fmadd(d, d, a2);
  });
}

// Statistics of the group [g0, g0 + gc) over all rows (chunked_statistics; ends with a
// barrier). Pivots of the first pass: row 0.
template <class V, class Done>
void nhwc_group_statistics(const float* x, const NhwcPlan& pl, i64 g0, i64 gc,
                           const ChunkWorkspace& ws, int t, int threads,
                           std::atomic<i64>& redo, Done&& done) {
  const double m = static_cast<double>(pl.rows);
  chunked_statistics(
      gc, m, ws, t, threads, redo, g0,
      [&](i64 chunk, const float* k) {
        nhwc_chunk_shifted_sums<V>(x, pl, chunk, g0, gc, k ? k : x + g0, ws);
      },
      [&](i64 c) { return x[g0 + c]; },
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
  const double m = static_cast<double>(pl.rows);
  std::atomic<i64> redo{-1};
  run_team(nhwc_parallel(a.problem), [&](int t, int threads) {
    const Range mine = share(pl.chunks, t, threads);
    for (i64 g0 = 0; g0 < pl.channels; g0 += pl.group) {
      const i64 gc = std::min(pl.group, pl.channels - g0);
      nhwc_group_statistics<V>(a.x, pl, g0, gc, ws, t, threads, redo, [&](i64 c, MeanVar s) {
        const Normalizer z = finalize_channel(a, g0 + c, s, m);
        ws.k[c] = z.k, ws.scale[c] = z.scale, ws.shift[c] = z.shift;
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
void nhwc_moments(const BatchNormProblem& p, const float* x, ChannelMoments out) {
  const NhwcPlan pl = nhwc_plan(p);
  // The workspace is not an argument of moments: the partials live on the stack when
  // they fit, else the channels go through in groups that fit.
  const double m = static_cast<double>(pl.rows);
  out.count = pl.rows;
  std::atomic<i64> redo{-1};
  NhwcPlan small = pl;
  small.group = std::min<i64>(pl.group, 64);
  small.chunk_rows = std::max(pl.chunk_rows, (pl.rows + kMaxChunks - 1) / kMaxChunks);
  small.chunks = (pl.rows + small.chunk_rows - 1) / small.chunk_rows;
  alignas(64) std::byte stack[2 * kMaxChunks * 64 * 8 + 1024 + 64 * 32];
  const ChunkWorkspace ws = nhwc_workspace(std::span<std::byte>(stack, sizeof stack), small);
  run_team(nhwc_parallel(p), [&](int t, int threads) {
    for (i64 g0 = 0; g0 < small.channels; g0 += small.group) {
      const i64 gc = std::min(small.group, small.channels - g0);
      nhwc_group_statistics<V>(x, small, g0, gc, ws, t, threads, redo, [&](i64 c, MeanVar s) {
        out.mean[g0 + c] = s.mean;
        out.m2[g0 + c] = s.var * m;
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
    for (i64 c = 0; c < gc; ++c) {
      const Normalizer z = infer_normalizer(a, g0 + c);
      k[c] = z.k, scale[c] = z.scale, shift[c] = z.shift;
    }
    run_team(nhwc_parallel(p), [&](int t, int threads) {
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
  nhwc_chunk_sums<V>(pl, chunk, gc, ws, [&]<class U>(i64 row, i64 c, U& a1, U& a2) {
    const i64 o = row * pl.channels + g0 + c;
    const U g = U::load(a.dy + o);
    a1 = a1 + g, a2 = U::fmadd(g, U::load(a.x + o) - U::load(mean + c), a2);
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
  const double m = static_cast<double>(pl.rows);
  const bool sums = backward_needs_sums(a);
  const bool frozen = a.statistics == BatchNormStatistics::frozen;
  run_team(nhwc_parallel(a.problem), [&](int t, int threads) {
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
      for (i64 c = chans.begin; c < chans.end; ++c) {
        double sdy = 0.0, sdyxm = 0.0;
        if (sums) sdy = ws.s1[c], sdyxm = ws.s2[c];
        if (!finite2(sdy, sdyxm)) {  // float overflow or non-finite input: redo in double
          sdy = 0.0, sdyxm = 0.0;
          const double mean = a.mean[g0 + c];
          for (i64 row = 0; row < pl.rows; ++row) {
            const i64 i = row * pl.channels + g0 + c;
            sdy += a.dy[i];
            sdyxm += static_cast<double>(a.dy[i]) * (a.x[i] - mean);
          }
        }
        accumulate_param_grads(a, g0 + c, sdy, sdyxm);
        const GradCoef q = grad_coefficients(a, g0 + c, sdy, sdyxm, m);
        ws.scale[c] = q.a, ws.shift[c] = q.b, ws.extra[c] = q.c;
      }
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
