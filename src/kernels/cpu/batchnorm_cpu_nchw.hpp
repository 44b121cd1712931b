// channels_first (NCHW) half of the fast CPU batch norm; included by batchnorm_cpu_impl.hpp only.
// A channel is N runs of S contiguous floats, run n at (n * C + c) * S. Threads split the
// channels; a thread takes a block of adjacent channels (statistics, then output) while the
// block's slice is in cache (L3, or L2), so x is read from DRAM once. Within a block memory
// is walked n outer, channel inner: with small S (7x7, 8x8) that turns N*C short runs into N
// contiguous streams of block*S floats. Each channel is still summed in its own fixed order
// (n, then s), so neither the block size nor the thread count changes a bit. Inference has
// nothing to reduce: threads split the N*C runs. Training and backward with short runs
// (8..128 floats) and N >= 4 go to batchnorm_cpu_nchw_rows.hpp instead (images as rows).
#pragma once

#include <array>

#include "kernels/cpu/batchnorm_cpu_common.hpp"

namespace bnorm::cpu {
namespace {

// Where the runs of a channel are. C == 1: the whole tensor is one run.
struct NchwGeometry {
  i64 runs, len, run_stride;
};
inline NchwGeometry nchw_geometry(const BatchNormProblem& p) {
  if (p.channels == 1) return {1, p.batch * p.spatial, 0};
  return {p.batch, p.spatial, p.channels * p.spatial};
}

// Calls f(offset from the channel start) for every value of a channel, in order.
template <class F>
void nchw_visit(const NchwGeometry& g, F&& f) {
  for (i64 n = 0; n < g.runs; ++n)
    for (i64 s = 0; s < g.len; ++s) f(n * g.run_stride + s);
}

constexpr i64 kMaxBlock = 256;             // channels per block (stack accumulators)
constexpr i64 kMinBlockBytes = 512 << 10;  // a block's slice (all inputs), at least half an L2
constexpr int kBlockLlcShare = 4;          // the blocks of all threads take 1/4 of the LLC

// Channels per block: each thread's share of the channels in as few blocks as fit a slice of
// max(kMinBlockBytes, LLC / (kBlockLlcShare * threads)), all of one size. Pass 2 then re-reads
// the block from L3 (from L2 where it is that small). A block's slice of one image is
// contiguous, and the longer that run, the better the prefetchers keep up from DRAM: with
// slices of 4 MiB instead of 512 KiB (2 threads; 128 channels a block instead of 20 on
// 32x256x14x14), dlopen A/B, the time from DRAM: 32x256x14x14 forward_train 0.85-0.94x,
// backward 0.77-0.92x, moments 0.77-0.81x, in cache 0.84-0.99x; 16x128x28x28 0.85-0.98x;
// 32x64x56x56 (beyond the LLC) 0.90-1.0x, but its forward_train in the bench's hot case
// 0.99-1.10x; small ones (2x512x28x28, 1x256x56x56, 4x64x16x16x16) 0.93-1.05x. Slices of
// 2 MiB gained about half as much on 32x256x14x14; the same 512 KiB cut in even blocks,
// nothing. (docs/benchmarks.md, run of e9dc6bf.)
inline i64 nchw_block(const BatchNormProblem& p, int tensors, int threads) {
  const i64 channel_bytes = p.batch * p.spatial * 4 * tensors;
  const i64 llc_share = cpu_features().llc_bytes / (kBlockLlcShare * threads);
  const i64 slice = std::max<i64>(kMinBlockBytes, llc_share);
  const i64 most = std::clamp<i64>(slice / channel_bytes, 1, kMaxBlock);
  const i64 mine = (p.channels + threads - 1) / threads;
  const i64 blocks = (mine + most - 1) / most;
  return (mine + blocks - 1) / blocks;
}

// Vector steps over one run: its whole vectors, plus one for the last len % W values when
// the run holds a vector (they are loaded as the run's last W values, overlapping the vector
// before, with the lanes already counted masked to zero, as the image rows do). 0: a run
// shorter than a vector, summed in float scalars.
template <class V>
i64 nchw_run_steps(const NchwGeometry& g) {
  return g.len >= V::width ? (g.len + V::width - 1) / V::width : 0;
}

// Runs short enough that a fold per run costs more than the run (7x7, 8x8) keep one float
// vector pair per channel across fold_runs runs (about kFoldSteps steps per lane), folded
// into double alike. 0: runs are long.
template <class V>
i64 nchw_fold_runs(const NchwGeometry& g) {
  const i64 steps = nchw_run_steps<V>(g);
  return steps * 2 <= kFoldSteps ? kFoldSteps / std::max<i64>(steps, 1) : 0;
}

// Over channels c0 .. c0+nb-1 and all runs: term(offset, kc, mask, acc1, acc2) adds the
// vector (or the F1 lane) at element offset `offset`, times `mask` (NoMask: all lanes), into
// float accumulators acc1, acc2, where kc = coef(j) is channel j's constant (pivot or mean),
// passed by value so that it stays in a register (read through the closure, it and the
// tensor pointer were reloaded at every step; with that and the tail as four scalar steps,
// the statistics of 32x256x14x14 in cache were 1.12x slower); s1[j], s2[j] receive the
// totals. Order per channel: runs, then positions, fixed.
// Each fold (a run of up to kFoldSteps vectors, or fold_runs short runs) is summed across its
// lanes in float, a fixed tree, and added to the channel's pair of doubles: 16 bytes a channel.
// Adding the fold lane by lane into W doubles a channel instead (128 bytes for both sums, 32
// KiB for a block of 256 channels, the whole L1) made every fold a read-modify-write of two
// lines that the stream of x had evicted; from DRAM that held the statistics of
// 32x256x14x14 (one fold per run) at 1.6x the time of a plain read of x with one thread, and
// a micro-benchmark of the same loop with register-only folds ran at the plain read's speed.
// dlopen A/B, time lanes-in-float / lanes-in-double: 32x256x14x14 statistics from DRAM
// 0.82-0.85x (one thread 0.67x), forward_train from DRAM 0.89-0.91x; in cache 1.02x and 1.005x;
// backward 0.97-1.0x; runs of several folds (28x28, 56x56) 0.96-1.03x.
// prefetch (long runs only; nullptr: none): the tensor term reads, from DRAM. Each run's
// lines are prefetched while the same run of the previous image is summed: runs are read
// image by image, and the jump of a whole image at every image defeats the hardware
// prefetchers. Measured: 32x64x56x56 forward_train (x beyond the LLC even "hot") 15-18%
// faster hot, 2% cold; the statistics alone of cold 32x256x14x14, 12%; but forward_train
// of 32x256x14x14 in L3 was 5% slower, so only inputs beyond half the LLC (beyond_llc) get it.
template <class V, class Coef, class Term>
void nchw_block_sums(const NchwGeometry& g, i64 S, i64 c0, i64 nb, Coef&& coef, Term&& term,
                     double* s1, double* s2, const float* prefetch) {
  constexpr int W = V::width;
  double t[kMaxBlock][2];  // nb used: the channel's two sums
  std::fill_n(&t[0][0], nb * 2, 0.0);
  const i64 nv = g.len / W, fold_runs = nchw_fold_runs<V>(g);
  const bool tail_vec = nchw_run_steps<V>(g) > nv;  // the last len % W values as a vector
  const V tail_mask = last_vector_mask<V>(g.len);
  if (fold_runs == 0) {  // long runs (> 16 vectors): fold within the run, four accumulators
    for (i64 n = 0; n < g.runs; ++n)
      for (i64 j = 0; j < nb; ++j) {
        const i64 o = (c0 + j) * S + n * g.run_stride;
        const float kc = coef(j);
        const float* next = prefetch && n + 1 < g.runs ? prefetch + o + g.run_stride : nullptr;
        for (i64 v0 = 0; v0 < nv; v0 += kFoldSteps) {
          const i64 end = std::min(nv, v0 + kFoldSteps);
          V a[4] = {V::zero(), V::zero(), V::zero(), V::zero()}, q[4] = {a[0], a[0], a[0], a[0]};
          i64 v = v0;
          for (; v + 4 <= end; v += 4) {
            if (next)  // every line (16 floats) of these four vectors, one image ahead
              for (i64 f = 0; f < 4 * W; f += 16) __builtin_prefetch(next + v * W + f, 0, 3);
            for (int u = 0; u < 4; ++u) term(o + (v + u) * W, kc, NoMask{}, a[u], q[u]);
          }
          for (; v < end; ++v) term(o + v * W, kc, NoMask{}, a[0], q[0]);
          if (end == nv && tail_vec) term(o + g.len - W, kc, tail_mask, a[1], q[1]);
          V::add_lane_sums(t[j], (a[0] + a[1]) + (a[2] + a[3]), (q[0] + q[1]) + (q[2] + q[3]));
        }
      }
  } else {
    V a1[kMaxBlock], a2[kMaxBlock];
    F1 b1[kMaxBlock], b2[kMaxBlock];
    for (i64 n0 = 0; n0 < g.runs; n0 += fold_runs) {
      for (i64 j = 0; j < nb; ++j) a1[j] = a2[j] = V::zero(), b1[j] = b2[j] = F1::zero();
      for (i64 n = n0; n < std::min(g.runs, n0 + fold_runs); ++n)
        for (i64 j = 0; j < nb; ++j) {
          const i64 o = (c0 + j) * S + n * g.run_stride;
          const float kc = coef(j);
          V a = a1[j], q = a2[j];
          for (i64 v = 0; v < nv; ++v) term(o + v * W, kc, NoMask{}, a, q);
          if (tail_vec) term(o + g.len - W, kc, tail_mask, a, q);
          a1[j] = a, a2[j] = q;
          if (nv == 0)  // a run shorter than a vector
            for (i64 i = 0; i < g.len; ++i) term(o + i, kc, NoMask{}, b1[j], b2[j]);
        }
      for (i64 j = 0; j < nb; ++j) {
        V::add_lane_sums(t[j], a1[j], a2[j]);
        t[j][0] += b1[j].v, t[j][1] += b2[j].v;
      }
    }
  }
  for (i64 j = 0; j < nb; ++j) s1[j] = t[j][0], s2[j] = t[j][1];
}

// For channels c0 .. c0+nb-1: s1[j] = sum (x - k[j]), s2[j] = sum (x - k[j])^2.
template <class V>
void nchw_block_shifted_sums(const float* x, const BatchNormProblem& p, const NchwGeometry& g,
                             i64 c0, i64 nb, const float* k, double* s1, double* s2) {
  auto coef = [k](i64 j) { return k[j]; };
  auto term = [x]<class U>(i64 o, float kc, auto mask, U& a1, U& a2) {
    const U d = masked(deviation(U::load(x + o), U::set1(-kc)), mask);
    a1 = a1 + d, a2 = U::fmadd(d, d, a2);
  };
  nchw_block_sums<V>(g, p.spatial, c0, nb, coef, term, s1, s2, beyond_llc(p, 1) ? x : nullptr);
}

// Mean and biased variance of channels c0 .. c0+nb-1 into mean[j], var[j]: shifted sums
// around each channel's first value, again around the mean where that pivot was poor, in
// double where the float sums are not finite.
template <class V>
void nchw_block_mean_var(const float* x, const BatchNormProblem& p, const NchwGeometry& g, i64 c0,
                         i64 nb, double* mean, double* var) {
  const ChannelCount m = channel_count(p.values_per_channel());
  float k[kMaxBlock];
  double s1[kMaxBlock], s2[kMaxBlock];
  for (i64 j = 0; j < nb; ++j) k[j] = x[(c0 + j) * p.spatial];
  nchw_block_shifted_sums<V>(x, p, g, c0, nb, k, s1, s2);
  for (i64 j = 0; j < nb; ++j) {
    const float* xc = x + (c0 + j) * p.spatial;
    const MeanVar r = *settle_channel(  // a re-sum (rare) reads the cached channel again
        s1[j], s2[j], k[j], m, true,
        [&] { return mean_var_double(xc, m, [&](auto f) { nchw_visit(g, f); }); },
        [&](float kj, double& t1, double& t2) {
          nchw_block_shifted_sums<V>(x, p, g, c0 + j, 1, &kj, &t1, &t2);
          return true;
        });
    mean[j] = r.mean, var[j] = r.var;
  }
}

// ---- Elementwise passes over spans: `runs` consecutive runs of `len` floats each, one
// contiguous piece of memory (the runs of adjacent channels in one image), each run with its
// own P constants (its channel's). span_map writes out[e] = op(constants of e's run, e) for
// every element e of the span: op(c, e) takes c, a std::array<U, P> of the constants as U,
// and returns the U at element e (U = V: the vector from e on; U = F1: element e alone);
// params(j) gives run j's constants (std::array<float, P>). With kStream the stores are
// non-temporal, after a scalar head up to the 32-byte boundary of out.
// Vectors go across runs: the one that straddles two runs (len >= W) takes its first lanes'
// constants from the one and the others' from the next (V::first_lanes). Run by run, a run of
// 49 or 196 floats does not end on a line, so the non-temporal stores left partial lines
// (7x7 and 14x14 did not stream), and each run ended in a scalar or overlapping tail; as one
// stream the span writes whole lines but at its two ends. dlopen A/B, forward_infer, span /
// run by run, from DRAM: 8x512x7x7 0.87x, 32x256x14x14 0.81x, 256x64x8x8 1.0x; in cache 0.75x,
// 0.93x, 0.89x.
// Each element is loaded before it is stored: out may alias op's inputs.
template <class V, bool kStream, std::size_t P, class Params, class Op>
void span_map(float* out, i64 len, i64 runs, Params&& params, Op&& op) {
  constexpr int W = V::width;
  auto splat = [&]<class U>(const std::array<float, P>& c) {
    std::array<U, P> r;
    for (std::size_t i = 0; i < P; ++i) r[i] = U::set1(c[i]);
    return r;
  };
  auto put = [&](i64 e, V v) {
    if constexpr (kStream) V::stream(out + e, v);
    else V::store(out + e, v);
  };
  auto scalars = [&](i64 j, i64 e, i64 count) {
    const std::array<F1, P> c = splat.template operator()<F1>(params(j));
    for (i64 i = e; i < e + count; ++i) F1::store(out + i, op(c, i));
  };
  if (len < W) {  // a run holds no whole vector
    for (i64 j = 0; j < runs; ++j) scalars(j, j * len, len);
    return;
  }
  i64 e = 0;
  if constexpr (kStream) {  // head < W <= len: in run 0
    e = std::min<i64>(len * runs, ((32 - reinterpret_cast<std::uintptr_t>(out) % 32) % 32) / 4);
    scalars(0, 0, e);
  }
  for (i64 j = 0; j < runs; ++j) {
    const i64 end = (j + 1) * len;
    const std::array<float, P> here = params(j);
    const std::array<V, P> c = splat.template operator()<V>(here);
    for (; e + W <= end; e += W) put(e, op(c, e));
    if (e == end) continue;
    if (j + 1 == runs) return scalars(j, e, end - e);
    const int lanes = static_cast<int>(end - e);  // in run j; the rest in run j + 1
    const std::array<float, P> next = params(j + 1);
    std::array<V, P> mixed;
    for (std::size_t i = 0; i < P; ++i)
      mixed[i] = V::first_lanes(lanes, V::set1(here[i]), V::set1(next[i]));
    put(e, op(mixed, e));
    e += W;
  }
}

// y = (x - k) * scale + shift over a span (span_map), run j with z(j), a Normalizer: normalize,
// inference (k = mean, shift = beta), frozen dx (x = dy, k = shift = 0).
template <class V, bool kStream, class Z>
void span_normalize(const float* x, float* y, i64 len, i64 runs, Z&& z) {
  span_map<V, kStream, 3>(
      y, len, runs,
      [&](i64 j) {
        const Normalizer n = z(j);
        return std::array<float, 3>{n.k, n.scale, n.shift};
      },
      [&]<class U>(const std::array<U, 3>& c, i64 e) {
        return U::fmadd(U::load(x + e) - c[0], c[1], c[2]);
      });
}

// dx = a * dy + (b * (x - mean) + c) over a span, run j with q(j) = {mean, a, b, c}
// (grad_coefficients).
template <class V, bool kStream, class Q>
void span_grad_dx(const float* x, const float* dy, float* dx, i64 len, i64 runs, Q&& q) {
  span_map<V, kStream, 4>(dx, len, runs, q, [&]<class U>(const std::array<U, 4>& c, i64 e) {
    return U::fmadd(c[1], U::load(dy + e), U::fmadd(c[2], U::load(x + e) - c[0], c[3]));
  });
}

// Streaming also needs spans (span_map) of whole lines, or long ones, so that the
// write-combining buffers leave full: a span is a block's or all channels' runs in one image,
// at least an image's worth but where a block is smaller (rare: a block is as many channels
// as fit half an L2 or more).
template <class V>
bool nchw_stream(const BatchNormProblem& p, OutputStores stores, Residency residency) {
  const i64 image_bytes = p.channels * p.spatial * 4;
  const bool whole_lines = image_bytes % 64 == 0 || image_bytes >= kStreamMinSpanBytes;
  return stream_outputs<V>(stores, whole_lines, residency);
}

inline bool nchw_parallel(const BatchNormProblem& p) {
  return p.numel() >= kParallelMinElems && p.channels > 1;
}

// y = (x - k) * scale + shift for channels c0 .. c0+nb-1, image by image, so that memory is
// visited in the order it lies (the block's runs in one image are one span).
template <class V, bool kStream>
void nchw_block_normalize(const float* x, float* y, const BatchNormProblem& p,
                          const NchwGeometry& g, i64 c0, i64 nb, const Normalizer* z) {
  for (i64 n = 0; n < g.runs; ++n) {
    const i64 o = c0 * p.spatial + n * g.run_stride;
    span_normalize<V, kStream>(x + o, y + o, g.len, nb, [&](i64 j) { return z[j]; });
  }
}

template <class V, bool kStream>
void nchw_forward_train_impl(const BatchNormForwardTrainArgs& a) {
  const BatchNormProblem& p = a.problem;
  const NchwGeometry g = nchw_geometry(p);
  const ChannelCount m = channel_count(p.values_per_channel());
  run_team(nchw_parallel(p), [&](int t, int threads) {
    const Range mine = share(p.channels, t, threads);
    const i64 block = nchw_block(p, 1, threads);
    for (i64 c0 = mine.begin; c0 < mine.end; c0 += block) {
      const i64 nb = std::min(block, mine.end - c0);
      double mean[kMaxBlock], var[kMaxBlock];
      Normalizer z[kMaxBlock];
      nchw_block_mean_var<V>(a.x, p, g, c0, nb, mean, var);
      finalize_channels(a, c0, {0, nb}, mean, var, m, [&](i64 j, Normalizer zj) { z[j] = zj; });
      nchw_block_normalize<V, kStream>(a.x, a.y, p, g, c0, nb, z);
    }
    if constexpr (kStream) V::fence();
  });
}

template <class V>
void nchw_forward_train(const BatchNormForwardTrainArgs& a) {
  if (nchw_stream<V>(a.problem, a.stores, data_residency(a.problem, 2, a.x, a.y)))
    nchw_forward_train_impl<V, true>(a);
  else nchw_forward_train_impl<V, false>(a);
}

template <class V>
void nchw_moments(const BatchNormProblem& p, const float* x, ChannelMoments out) {
  const NchwGeometry g = nchw_geometry(p);
  const ChannelCount m = channel_count(p.values_per_channel());
  run_team(nchw_parallel(p), [&](int t, int threads) {
    const Range mine = share(p.channels, t, threads);
    const i64 block = nchw_block(p, 1, threads);
    for (i64 c0 = mine.begin; c0 < mine.end; c0 += block) {
      const i64 nb = std::min(block, mine.end - c0);
      double mean[kMaxBlock], var[kMaxBlock];
      nchw_block_mean_var<V>(x, p, g, c0, nb, mean, var);
      write_moments(out, c0, {0, nb}, mean, var, m);
    }
  });
}

template <class V, bool kStream>
void nchw_forward_infer_impl(const BatchNormForwardInferArgs& a) {
  const BatchNormProblem& p = a.problem;
  const NchwGeometry g = nchw_geometry(p);
  // Elementwise, no cache slice to keep: each thread takes one contiguous range of the N*C
  // runs (as a plain loop would; a share of the channels instead reads N pieces per thread
  // and was 30% slower on 256x64x8x8), with every channel's parameters on the stack.
  constexpr i64 kInferBlock = 1024;
  if (p.channels <= kInferBlock) {
    run_team(nchw_parallel(p), [&](int t, int threads) {
      Normalizer z[kInferBlock];
      infer_normalizers(a, 0, p.channels, [&](i64 c, Normalizer zc) { z[c] = zc; });
      const Range mine = share(p.batch * p.channels, t, threads);
      for (i64 r = mine.begin; r < mine.end;) {  // my runs of one image at a time: a span
        const i64 c = r % p.channels, end = std::min(mine.end, r - c + p.channels);
        const i64 o = r * p.spatial;
        span_normalize<V, kStream>(a.x + o, a.y + o, p.spatial, end - r, [&](i64 j) { return z[c + j]; });
        r = end;
      }
      if constexpr (kStream) V::fence();
    });
    return;
  }
  run_team(nchw_parallel(p), [&](int t, int threads) {
    const Range mine = share(p.channels, t, threads);
    for (i64 c0 = mine.begin; c0 < mine.end; c0 += kInferBlock) {
      const i64 nb = std::min(kInferBlock, mine.end - c0);
      Normalizer z[kInferBlock];
      infer_normalizers(a, c0, nb, [&](i64 j, Normalizer zj) { z[j] = zj; });
      nchw_block_normalize<V, kStream>(a.x, a.y, p, g, c0, nb, z);
    }
    if constexpr (kStream) V::fence();
  });
}

template <class V>
void nchw_forward_infer(const BatchNormForwardInferArgs& a) {
  if (nchw_stream<V>(a.problem, a.stores, data_residency(a.problem, 2, a.x, a.y)))
    nchw_forward_infer_impl<V, true>(a);
  else nchw_forward_infer_impl<V, false>(a);
}

// For channels c0 .. c0+nb-1: sdy[j] = sum dy, sdyxm[j] = sum dy (x - mean).
template <class V>
void nchw_block_grad_sums(const BatchNormBackwardArgs& a, const NchwGeometry& g, i64 c0, i64 nb,
                          double* sdy, double* sdyxm) {
  const i64 S = a.problem.spatial;
  auto coef = [mean = a.mean + c0](i64 j) { return mean[j]; };
  auto term = [x = a.x, dy = a.dy]<class U>(i64 o, float mean, auto mask, U& a1, U& a2) {
    const U d = masked(U::load(dy + o), mask);
    a1 = a1 + d, a2 = U::fmadd(d, deviation(U::load(x + o), U::set1(-mean)), a2);
  };
  nchw_block_sums<V>(g, S, c0, nb, coef, term, sdy, sdyxm, nullptr);
  for (i64 j = 0; j < nb; ++j) {
    if (finite2(sdy[j], sdyxm[j])) continue;
    // float overflow or non-finite input: redo in double
    const i64 base = (c0 + j) * S;
    const double mean = a.mean[c0 + j];
    double t1 = 0.0, t2 = 0.0;
    nchw_visit(g, [&](i64 i) {
      t1 += a.dy[base + i];
      t2 += static_cast<double>(a.dy[base + i]) * (a.x[base + i] - mean);
    });
    sdy[j] = t1, sdyxm[j] = t2;
  }
}

template <class V, bool kStream>
void nchw_backward_impl(const BatchNormBackwardArgs& a) {
  const BatchNormProblem& p = a.problem;
  const NchwGeometry g = nchw_geometry(p);
  const ChannelCount m = channel_count(p.values_per_channel());
  const bool sums = backward_needs_sums(a);
  const bool frozen = a.statistics == BatchNormStatistics::frozen;
  run_team(nchw_parallel(p), [&](int t, int threads) {
    const Range mine = share(p.channels, t, threads);
    const i64 block = nchw_block(p, 2, threads);
    for (i64 c0 = mine.begin; c0 < mine.end; c0 += block) {
      const i64 nb = std::min(block, mine.end - c0);
      double sdy[kMaxBlock], sdyxm[kMaxBlock];  // nb used
      GradCoef q[kMaxBlock];
      if (sums) nchw_block_grad_sums<V>(a, g, c0, nb, sdy, sdyxm);
      else std::fill_n(sdy, nb, 0.0), std::fill_n(sdyxm, nb, 0.0);
      accumulate_param_grads(a, c0, nb, sdy, sdyxm);
      for (i64 j = 0; j < nb; ++j) q[j] = grad_coefficients(a, c0 + j, sdy[j], sdyxm[j], m);
      if (!a.mask.dx) continue;
      for (i64 n = 0; n < g.runs; ++n) {  // the block's runs in one image: a span
        const i64 o = c0 * p.spatial + n * g.run_stride;
        if (frozen)  // dx = (gamma * invstd) * dy
          span_normalize<V, kStream>(a.dy + o, a.dx + o, g.len, nb,
                                     [&](i64 j) { return Normalizer{0.0f, q[j].a, 0.0f}; });
        else
          span_grad_dx<V, kStream>(a.x + o, a.dy + o, a.dx + o, g.len, nb, [&](i64 j) {
            return std::array<float, 4>{a.mean[c0 + j], q[j].a, q[j].b, q[j].c};
          });
      }
    }
    if constexpr (kStream) V::fence();
  });
}

template <class V>
void nchw_backward(const BatchNormBackwardArgs& a) {
  if (a.mask.dx && nchw_stream<V>(a.problem, a.stores, data_residency(a.problem, 3, a.dy, a.dx)))
    nchw_backward_impl<V, true>(a);
  else nchw_backward_impl<V, false>(a);
}

}  // namespace
}  // namespace bnorm::cpu
