// The fast CPU batch-normalization algorithm, written once over a vector type V.
// Included by batchnorm_cpu_scalar.cpp (V = Lanes8, plain C++ the compiler vectorizes at
// baseline SSE2) and batchnorm_cpu_avx2.cpp (V = Avx2, intrinsics; that TU is built with
// -mavx2 -mfma). Everything here has internal linkage, so the two ISAs never share a symbol.
//
// A vector type V provides: width; zero(), set1(), load() (unaligned), store() (unaligned),
// stream() (non-temporal, 32-byte aligned; plain store where the ISA has none), fence(),
// + - *, fmadd(a, b, c) = a * b + c, first_lanes(m, a, b): lanes below m from a, the others
// from b, add_to(double* acc, v): acc[l] += v[l], store_to(acc, v):
// acc[l] = v[l],
// lane_sums(const V* a): lane j = the sum of the lanes of a[j] (j < width, a fixed tree), and
// add_lane_sums(double* acc, a, b): acc[0] += the sum of a's lanes, acc[1] += b's (a fixed tree).
// F1 below is the one-lane version; it runs the tails with the same code.
//
// Design (why it is fast and why it is exact enough):
//  - Memory: each op reads its inputs from DRAM once. Statistics and the output pass run on
//    one channel (channels_first: N strided runs of S floats) or one channel group
//    (channels_last: all rows, a range of channels) while that slice is still in L2/L3.
//    channels_first with short runs reads images as rows, like channels_last, with per-chunk
//    partials in the workspace (batchnorm_cpu_nchw_rows.hpp).
//  - Determinism: work is cut into pieces whose boundaries depend on the problem only
//    (a channel, or a chunk of rows); each piece is summed by one thread in a fixed order,
//    partials go to the caller's workspace and are merged in chunk order. Which thread ran
//    a piece never changes a bit of the result.
//  - Precision: sums are shifted by a per-channel pivot K (the channel's first value, or the
//    mean of a few values: sample_pivots), so x - K is exact (Sterbenz) for data near its
//    mean. Floats are summed over short blocks (32 steps, 4 accumulators) and each block is
//    folded into double (lane by lane, or as a fixed tree of its lanes). If the pivot turns
//    out far from the mean (|mean - K| > 2 std), the channel is summed again around K = mean
//    (channels_last: the whole group of channels, as one channel is a column).
//    Sums that are not finite (NaN/Inf input, or finite values whose squares overflow
//    float) are redone in double, two passes, like the reference.
//    The output is y = (x - K) * scale + shift, shift = beta - (mean - K) * scale in double,
//    which keeps large offsets (mean 1e4, std 1e-3) exact where x * scale + shift would not.
#pragma once

#include "kernels/cpu/batchnorm_cpu_common.hpp"
#include "kernels/cpu/batchnorm_cpu_nchw.hpp"
#include "kernels/cpu/batchnorm_cpu_nchw_rows.hpp"
#include "kernels/cpu/batchnorm_cpu_nhwc.hpp"

namespace bnorm::cpu {
namespace {

// ---- Entry points: route to the layout that matches the memory order.
// S == 1: both layouts are (N, C) rows, handled as rows (channels_last).
// C == 1 (channels_first or last): one channel, contiguous: one run of N*S values.
// channels_first with short runs and several images: images as rows (nchw_as_image_rows).
inline bool as_rows(const BatchNormProblem& p) {
  return p.channels > 1 && (p.spatial == 1 || p.layout == Layout::channels_last);
}

inline std::size_t workspace_bytes_cpu(const BatchNormProblem& p) {
  if (as_rows(p)) return nhwc_workspace_bytes(nhwc_plan(p));
  if (nchw_as_image_rows(p)) return nchw_rows_workspace_bytes(nchw_rows_plan(p));
  return 0;
}

template <class V>
struct BatchNormCpu {
  static void forward_train(const BatchNormForwardTrainArgs& a) {
    if (as_rows(a.problem)) nhwc_forward_train<V>(a);
    else if (nchw_as_image_rows(a.problem)) rows_forward_train<V>(a);
    else nchw_forward_train<V>(a);
  }
  static void forward_infer(const BatchNormForwardInferArgs& a) {
    if (as_rows(a.problem)) nhwc_forward_infer<V>(a);
    else nchw_forward_infer<V>(a);
  }
  static void backward(const BatchNormBackwardArgs& a) {
    if (as_rows(a.problem)) nhwc_backward<V>(a);
    else if (nchw_as_image_rows(a.problem)) rows_backward<V>(a);
    else nchw_backward<V>(a);
  }
  static void moments(const BatchNormProblem& p, const float* x, ChannelMoments out,
                      std::span<std::byte> workspace) {
    if (as_rows(p)) nhwc_moments<V>(p, x, out, workspace);
    else if (nchw_as_image_rows(p)) rows_moments<V>(p, x, out, workspace);
    else nchw_moments<V>(p, x, out);
  }
};

}  // namespace
}  // namespace bnorm::cpu
