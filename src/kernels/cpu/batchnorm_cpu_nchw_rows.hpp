// channels_first with short runs (8 <= S <= 128 floats: 7x7, 8x8, 11x11) and a batch of
// several images; included by batchnorm_cpu_impl.hpp only.
//
// Why: split by channels (batchnorm_cpu_nchw.hpp), a thread reads N pieces of (its channels) *
// S floats, strided by an image, and sums each channel's run of a few vectors in one
// dependent chain. Here each image is a row of C*S contiguous floats, as channels_last rows
// are: images are cut into chunks (sizes from the problem only), each thread streams its
// chunks front to back (pass 1), then takes the chunks back to front (pass 2, each chunk's
// images in order), and channels are summed four at a time, so the chains overlap.
//
// Order of every sum (fixed; the thread count changes no bit): per image and channel, float
// lanes over the run (vectors in order, then the run's last W values with the lanes already
// counted masked to zero), lanes reduced by V::lane_sums, the result added in double to the
// chunk's partial, images in order; chunk partials merged in chunk order (chunked_statistics).
#pragma once

#include <array>

#include "kernels/cpu/batchnorm_cpu_common.hpp"
#include "kernels/cpu/batchnorm_cpu_nchw.hpp"

namespace bnorm::cpu {
namespace {

constexpr i64 kRowsMinSpatial = 8;     // the vector width: a run holds one full vector
// Longer runs stay with the channel blocks: on 32x256x14x14 (S = 196) rows were 11-22%
// slower in forward_train from DRAM (8x8: 1.5x faster). Measured again with the blocks' L3
// slices (e9dc6bf): rows 1.03-1.36x slower on 32x256x14x14, blocks 1.10-1.31x slower on
// 256x64x8x8 and the same on 8x512x7x7.
constexpr i64 kRowsMaxSpatial = 128;
constexpr i64 kRowsMinBatch = 4;       // fewer images: too few chunks to share

struct NchwRowsPlan {
  i64 images, channels, spatial;
  i64 chunk_images;  // images per chunk
  i64 chunks;
  Residency residency = Residency::unknown;  // data_residency: the statistics prefetch unless cache
};

inline bool nchw_as_image_rows(const BatchNormProblem& p) {
  return p.layout == Layout::channels_first && p.channels > 1 && p.batch >= kRowsMinBatch &&
         p.spatial >= kRowsMinSpatial && p.spatial <= kRowsMaxSpatial;
}

inline NchwRowsPlan nchw_rows_plan(const BatchNormProblem& p) {
  const i64 chunk_images = (p.batch + kMaxChunks - 1) / kMaxChunks;
  return {p.batch, p.channels, p.spatial, chunk_images,
          (p.batch + chunk_images - 1) / chunk_images};
}

inline std::size_t nchw_rows_workspace_bytes(const NchwRowsPlan& pl) {
  return chunk_workspace_bytes(pl.chunks, pl.channels);
}

inline Range chunk_images(const NchwRowsPlan& pl, i64 chunk) {
  return {chunk * pl.chunk_images, std::min(pl.images, (chunk + 1) * pl.chunk_images)};
}

// U channels of one image, starting at element `at` (channel j's run at at + j * S): float
// sums over each run into out1[j], out2[j]. term(offset, kc, mask, a1, a2) adds the vector at
// `offset` (kc: the channel's constant from coef(j)); the run's last W values overlap the
// previous vector, and `mask` zeroes the lanes already counted.
template <class V, int U, class Coef, class Term>
void rows_channel_sums(i64 at, i64 S, V tail_mask, Coef&& coef, Term&& term, V* out1, V* out2) {
  constexpr int W = V::width;
  const i64 nv = S / W;
  V a1[U], a2[U], kc[U];
  for (int u = 0; u < U; ++u) a1[u] = a2[u] = V::zero(), kc[u] = coef(u);
  for (i64 v = 0; v < nv; ++v)
    for (int u = 0; u < U; ++u) term(at + u * S + v * W, kc[u], NoMask{}, a1[u], a2[u]);
  if (S % W)
    for (int u = 0; u < U; ++u) term(at + u * S + S - W, kc[u], tail_mask, a1[u], a2[u]);
  for (int u = 0; u < U; ++u) out1[u] = a1[u], out2[u] = a2[u];
}

// Pass 1 over chunk `chunk`: ws.s1/s2 row `chunk` = per-channel sums of term over its images.
// coef(c) gives channel c's constant vector, as term takes it (the negated pivot, or the mean).
// Unless the data is in cache (pl.residency), the lines of `streams` kPrefetchAheadBytes
// ahead are prefetched, as many as each group of W channels reads: the runs of four channels
// summed side by side step back and forth by a run, and the hardware prefetchers lost the
// stream. dlopen A/B, statistics
// from DRAM: 8x512x7x7 0.72x the time, 256x64x8x8 0.84x, 64x128x11x11 0.46x (forward_train
// 0.82x, 0.87x, 0.62x); in cache the prefetch only costs (1.2-1.3x), so it is off there.
template <class V, std::size_t kStreams, class Coef, class Term>
void rows_chunk_sums(const NchwRowsPlan& pl, i64 chunk, const ChunkWorkspace& ws,
                     std::array<const float*, kStreams> streams, Coef&& coef, Term&& term) {
  constexpr int W = V::width;
  static_assert(W == kRowsMinSpatial, "a run must hold a vector; lane_sums reduces W channels");
  const i64 C = pl.channels, S = pl.spatial;
  const V mask = last_vector_mask<V>(S);
  double* s1 = ws.s1 + chunk * C;
  double* s2 = ws.s2 + chunk * C;
  const Range r = chunk_images(pl, chunk);
  const i64 end = pl.images * C * S * 4;  // bytes in each stream
  for (i64 n = r.begin; n < r.end; ++n) {
    const bool first = n == r.begin;  // stores its sums, the later images add (store_or_add)
    const i64 image = n * C * S;
    i64 c0 = 0;
    for (; c0 + W <= C; c0 += W) {  // W channels: two overlapped groups of 4, one reduction
      if (pl.residency != Residency::cache)  // the lines of these W runs, kPrefetchAheadBytes on
        for (i64 at = (image + c0 * S) * 4 + kPrefetchAheadBytes, stop = at + W * S * 4;
             at < stop && at < end; at += 64)
          for (const float* t : streams) __builtin_prefetch(reinterpret_cast<const char*>(t) + at, 0, 2);
      V t1[W], t2[W];
      for (int h = 0; h < W; h += 4)
        rows_channel_sums<V, 4>(image + (c0 + h) * S, S, mask,
                                [&](int u) { return coef(c0 + h + u); }, term, t1 + h, t2 + h);
      store_or_add(s1 + c0, V::lane_sums(t1), first), store_or_add(s2 + c0, V::lane_sums(t2), first);
    }
    for (; c0 < C; ++c0) {  // the last C % W channels, one at a time
      V t1[W], t2[W];
      for (int j = 1; j < W; ++j) t1[j] = t2[j] = V::zero();
      rows_channel_sums<V, 1>(image + c0 * S, S, mask, [&](int) { return coef(c0); }, term, t1, t2);
      alignas(64) float r1[W], r2[W];
      V::store(r1, V::lane_sums(t1)), V::store(r2, V::lane_sums(t2));
      store_or_add(s1 + c0, F1{r1[0]}, first), store_or_add(s2 + c0, F1{r2[0]}, first);
    }
  }
}

// Shifted sums around k[c].
template <class V>
void rows_chunk_shifted_sums(const float* x, const NchwRowsPlan& pl, i64 chunk, const float* k,
                             const ChunkWorkspace& ws) {
  auto coef = [&](i64 c) { return V::set1(-k[c]); };
  auto term = [&](i64 o, V neg_k, auto mask, V& a1, V& a2) {
    const V d = masked(deviation(V::load(x + o), neg_k), mask);
    a1 = a1 + d, a2 = V::fmadd(d, d, a2);
  };
  rows_chunk_sums<V, 1>(pl, chunk, ws, {x}, coef, term);
}

// Pass 2 over chunk `chunk`: y = (x - k) * scale + shift per channel. The caller walks the
// chunks last to first (the most recently summed are still in cache), and each chunk's images
// go first to last: walking them backwards too broke each thread's stream at every image, and
// the prefetchers lost it (one thread's half of 256x64x8x8, in L3, micro-benchmark: 1.16-1.24x
// the time).
template <class V, bool kStream>
void rows_chunk_normalize(const float* x, float* y, const NchwRowsPlan& pl, i64 chunk,
                          const float* k, const float* scale, const float* shift) {
  const i64 C = pl.channels, S = pl.spatial;
  const Range r = chunk_images(pl, chunk);
  for (i64 n = r.begin; n < r.end; ++n) {  // an image: one span
    const i64 o = n * C * S;
    span_normalize<V, kStream>(x + o, y + o, S, C,
                               [&](i64 c) { return Normalizer{k[c], scale[c], shift[c]}; });
  }
}

// Statistics of every channel (chunked_statistics; ends with a barrier). Pivots: the mean of
// each channel's first 8 values in image 0 (every run has them), one or two lines per
// channel; a poor one re-sums that channel alone, its N runs, as the channel blocks do. 16
// values spread over the batch (as channels_last samples rows) were 16 lines per channel
// here: 1.3x slower forward_train on cold 8x512x7x7.
template <class V, class Done>
void rows_statistics(const float* x, const BatchNormProblem& p, const NchwRowsPlan& pl,
                     const ChunkWorkspace& ws, int t, int threads, std::atomic<i64>& redo,
                     Done&& done) {
  const NchwGeometry g = nchw_geometry(p);
  const ChannelCount m = channel_count(p.values_per_channel());
  chunked_statistics(
      pl.channels, m, ws, t, threads, redo, 0, kRowsMinSpatial,
      [&](i64 c, i64 j) { return x[c * pl.spatial + j]; },
      [&](i64 chunk, const float* k) { rows_chunk_shifted_sums<V>(x, pl, chunk, k, ws); },
      [&](i64 c, float k, double& s1, double& s2) {
        nchw_block_shifted_sums<V>(x, p, g, c, 1, &k, &s1, &s2);
        return true;
      },
      [&](i64 c) { return mean_var_double(x + c * pl.spatial, m, [&](auto f) { nchw_visit(g, f); }); },
      done);
}

template <class V, bool kStream>
void rows_forward_train_impl(const BatchNormForwardTrainArgs& a, const NchwRowsPlan& pl) {
  const ChunkWorkspace ws = chunk_workspace(a.workspace, pl.chunks, pl.channels);
  const ChannelCount m = channel_count(a.problem.values_per_channel());
  std::atomic<i64> redo{-1};
  run_team(nchw_parallel(a.problem), [&](int t, int threads) {
    rows_statistics<V>(a.x, a.problem, pl, ws, t, threads, redo, [&](Range r) {
      finalize_channels(a, 0, r, ws.mean, ws.var, m, [&](i64 c, Normalizer z) {
        ws.k[c] = z.k, ws.scale[c] = z.scale, ws.shift[c] = z.shift;
      });
    });
    const Range mine = share(pl.chunks, t, threads);
    for (i64 chunk = mine.end - 1; chunk >= mine.begin; --chunk)
      rows_chunk_normalize<V, kStream>(a.x, a.y, pl, chunk, ws.k, ws.scale, ws.shift);
    if constexpr (kStream) V::fence();
  });
}

template <class V>
void rows_forward_train(const BatchNormForwardTrainArgs& a) {
  NchwRowsPlan pl = nchw_rows_plan(a.problem);
  pl.residency = data_residency(a.problem, 2, a.x, a.y);
  if (nchw_stream<V>(a.problem, a.stores, pl.residency)) rows_forward_train_impl<V, true>(a, pl);
  else rows_forward_train_impl<V, false>(a, pl);
}

// The statistics pass of forward_train, in the same workspace. (The channel blocks, used here
// before, read short runs image by image: 2.6x the time of a plain read on cold 256x64x8x8.)
template <class V>
void rows_moments(const BatchNormProblem& p, const float* x, ChannelMoments out,
                  std::span<std::byte> workspace) {
  NchwRowsPlan pl = nchw_rows_plan(p);
  pl.residency = data_residency(p, 1, x, x);
  const ChunkWorkspace ws = chunk_workspace(workspace, pl.chunks, pl.channels);
  const ChannelCount m = channel_count(p.values_per_channel());
  std::atomic<i64> redo{-1};
  run_team(nchw_parallel(p), [&](int t, int threads) {
    rows_statistics<V>(x, p, pl, ws, t, threads, redo,
                       [&](Range r) { write_moments(out, 0, r, ws.mean, ws.var, m); });
  });
}

// Backward pass 1 over a chunk: sdy = sum dy, sdyxm = sum dy (x - mean) per channel.
template <class V>
void rows_chunk_grad_sums(const BatchNormBackwardArgs& a, const NchwRowsPlan& pl, i64 chunk,
                          const ChunkWorkspace& ws) {
  // x - mean as a subtraction, not deviation(): from DRAM that was 1.06-1.11x the time here.
  auto coef = [&](i64 c) { return V::set1(a.mean[c]); };
  auto term = [&](i64 o, V mean, auto mask, V& a1, V& a2) {
    const V d = masked(V::load(a.dy + o), mask);
    a1 = a1 + d, a2 = V::fmadd(d, V::load(a.x + o) - mean, a2);
  };
  // No prefetch: of dy's and x's lines from DRAM, it made 8x512x7x7 and 256x64x8x8 backward
  // 1.05-1.13x slower (dlopen A/B).
  rows_chunk_sums<V, 0>(pl, chunk, ws, {}, coef, term);
}

template <class V, bool kStream>
void rows_backward_impl(const BatchNormBackwardArgs& a, const NchwRowsPlan& pl) {
  const BatchNormProblem& p = a.problem;
  const NchwGeometry g = nchw_geometry(p);
  const ChunkWorkspace ws = chunk_workspace(a.workspace, pl.chunks, pl.channels);
  const ChannelCount m = channel_count(p.values_per_channel());
  const bool sums = backward_needs_sums(a);
  const bool frozen = a.statistics == BatchNormStatistics::frozen;
  const i64 C = pl.channels, S = pl.spatial;
  run_team(nchw_parallel(p), [&](int t, int threads) {
    const Range mine = share(pl.chunks, t, threads), chans = share(C, t, threads);
    if (sums) {
      for (i64 chunk = mine.begin; chunk < mine.end; ++chunk)
        rows_chunk_grad_sums<V>(a, pl, chunk, ws);
      team_barrier(threads);
      chunk_merge(ws, chans);
    }
    finish_grad_channels(a, ws, chans, 0, sums, m, [&](i64 c, auto&& f) {
      nchw_visit(g, [&](i64 i) { f(c * S + i); });
    });
    if (!a.mask.dx) return;
    team_barrier(threads);
    for (i64 chunk = mine.end - 1; chunk >= mine.begin; --chunk) {
      const Range r = chunk_images(pl, chunk);
      for (i64 n = r.begin; n < r.end; ++n) {  // chunks last to first, images in order
        const i64 o = n * C * S;  // an image: one span
        if (frozen)  // dx = (gamma * invstd) * dy
          span_normalize<V, kStream>(a.dy + o, a.dx + o, S, C,
                                     [&](i64 c) { return Normalizer{0.0f, ws.scale[c], 0.0f}; });
        else
          span_grad_dx<V, kStream>(a.x + o, a.dy + o, a.dx + o, S, C, [&](i64 c) {
            return std::array<float, 4>{a.mean[c], ws.scale[c], ws.shift[c], ws.extra[c]};
          });
      }
    }
    if constexpr (kStream) V::fence();
  });
}

template <class V>
void rows_backward(const BatchNormBackwardArgs& a) {
  const NchwRowsPlan pl = nchw_rows_plan(a.problem);
  if (a.mask.dx && nchw_stream<V>(a.problem, a.stores, data_residency(a.problem, 3, a.dy, a.dx)))
    rows_backward_impl<V, true>(a, pl);
  else rows_backward_impl<V, false>(a, pl);
}

}  // namespace
}  // namespace bnorm::cpu
