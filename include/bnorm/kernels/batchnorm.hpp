// bnorm/kernels/batchnorm.hpp: the batch-normalization kernel family, one home.
//
// Batch normalization (Ioffe & Szegedy, 2015, Algorithm 1 and section 3.2), per channel c,
// over every axis but C (m = N * spatial values per channel):
//
//   mean_c   = 1/m  sum_i x_i                        (batch mean)
//   var_c    = 1/m  sum_i (x_i - mean_c)^2           (biased variance: used to normalize)
//   invstd_c = 1 / sqrt(var_c + eps)
//   y_i      = gamma_c * (x_i - mean_c) * invstd_c + beta_c
//
// Backward (training: mean and var depend on x), with xhat_i = (x_i - mean_c) * invstd_c:
//   dbeta_c  = sum_i dy_i
//   dgamma_c = sum_i dy_i * xhat_i
//   dx_i     = gamma_c * invstd_c * (dy_i - dbeta_c/m - xhat_i * dgamma_c/m)
// Backward (frozen statistics: mean and invstd are constants, e.g. fine-tuning in eval mode):
//   dx_i     = gamma_c * invstd_c * dy_i         (dgamma_c and dbeta_c as above)
// The derivation, line by line, is in docs/batchnorm-math.md and in the reference kernel.
//
// Conventions (written down once, here):
//  - momentum is the weight of the NEW batch (PyTorch's meaning):
//      running = (1 - momentum) * running + momentum * batch;
//    momentum "none" means a cumulative average: the factor is 1 / num_batches_tracked,
//    counted after this batch. See running_average_factor().
//  - Normalization uses the biased variance; running_var stores the unbiased one,
//    var * m / (m - 1).
//  - Parameter gradients (dgamma, dbeta) ACCUMULATE (+=); activation gradients (dx) are
//    WRITTEN (=).
//  - gamma == nullptr means affine off (gamma = 1, beta = 0; dgamma/dbeta not produced).
//  - Training needs more than one value per channel (m > 1); otherwise the kernels throw
//    std::invalid_argument, as PyTorch does, instead of producing NaN.
//  - Buffers are contiguous in the problem's layout; kernels never allocate. Scratch memory
//    (for deterministic cross-thread reductions) comes from the caller, sized by
//    batchnorm_workspace_bytes().
//  - Results do not depend on the number of threads: every reduction has a fixed order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "bnorm/tensor/tensor.hpp"

namespace bnorm {

// The shape seen by the kernels: (N, C, S) where S is the product of the spatial extents
// (1 for a (N, C) input, L for (N, C, L), H*W, D*H*W). Element (n, c, s) lives at
//   channels_first: (n * C + c) * S + s
//   channels_last:  (n * S + s) * C + c
struct BatchNormProblem {
  std::int64_t batch = 0;     // N
  std::int64_t channels = 0;  // C
  std::int64_t spatial = 1;   // S
  Layout layout = Layout::channels_first;

  // From a logical (N, C, ...) shape of rank 2..5.
  static BatchNormProblem from_shape(const Shape& shape, Layout layout);
  std::int64_t values_per_channel() const { return batch * spatial; }  // m
  std::int64_t numel() const { return batch * channels * spatial; }
  // Problem string shared by tests and benchmarks, e.g. "n32c64s3136:nchw".
  std::string to_string() const;
  // The inverse of to_string(), and more spellings of the same grammar:
  //   n<N>c<C>[<spatial>][:<layout>]
  // where <spatial> is s<S>, or the extents l<L>, h<H>w<W>, d<D>h<H>w<W> (S is their
  // product; none: S = 1) and <layout> is nchw, ncl, ncdhw, nc (channels_first, the default)
  // or nhwc, nlc, ndhwc (channels_last). "n32c64h56w56:nhwc" == "n32c64s3136:nhwc".
  // Throws std::invalid_argument quoting the text when it does not follow the grammar.
  static BatchNormProblem parse(std::string_view text);
  bool operator==(const BatchNormProblem&) const = default;
};

// Per-channel partial statistics of some set of values: count, mean and M2 (the sum of
// squared deviations from that mean). Partials of disjoint shards merge exactly with
// Chan, Golub & LeVeque (1979); that is what synchronized BN across processes reduces.
struct ChannelMoments {
  std::int64_t count = 0;  // values per channel in this partial (the same for every channel)
  double* mean = nullptr;  // [C]
  double* m2 = nullptr;    // [C]
};

// How a kernel stores its big output (y, or dx). The values are bitwise the same whichever
// is used; only the speed differs.
//  automatic: non-temporal (streaming) stores where they pay, cached stores otherwise. They
//             pay when the output would go to DRAM anyway: the tensors are beyond half the
//             last-level cache, or a few timed loads find both the big input and the output
//             in DRAM (see src/kernels/cpu/cache_residency.hpp). Streaming an output that
//             fits in cache leaves it out of cache for whoever reads it next, which costs
//             more than it saves; so a call whose input is in cache stores normally.
//  cached:    normal stores.
//  streaming: non-temporal stores wherever the implementation has them (cpu_avx2; for
//             channels_last, C a multiple of 8 and a 32-byte-aligned output).
enum class OutputStores : std::uint8_t { automatic, cached, streaming };

// "automatic", "cached", "streaming": the names `bnorm bench --stores` and Python's
// `stores=` use. parse_output_stores throws std::invalid_argument listing them for any other.
std::string_view output_stores_name(OutputStores stores);
OutputStores parse_output_stores(std::string_view name);

// Where running statistics are updated; mean == nullptr means "do not update".
struct RunningStatsUpdate {
  float* mean = nullptr;  // [C]
  float* var = nullptr;   // [C], unbiased
  double factor = 0.1;    // weight of the new batch; see running_average_factor()
};

// momentum given: momentum; momentum none: 1 / num_batches_tracked (the count including
// the batch being added), which makes the running values a cumulative average.
double running_average_factor(std::optional<double> momentum, std::int64_t num_batches_tracked);

struct BatchNormForwardTrainArgs {
  BatchNormProblem problem;
  double eps = 1e-5;
  const float* x = nullptr;      // [N*C*S]
  const float* gamma = nullptr;  // [C] or nullptr (affine off)
  const float* beta = nullptr;   // [C] or nullptr (affine off)
  float* y = nullptr;            // [N*C*S]; may alias x
  float* save_mean = nullptr;    // [C] out: batch mean, for backward
  float* save_invstd = nullptr;  // [C] out: 1/sqrt(var + eps), for backward
  RunningStatsUpdate running;    // optional
  std::span<std::byte> workspace;  // batchnorm_workspace_bytes(problem) bytes
  OutputStores stores = OutputStores::automatic;
};

// y = (x - mean) * invstd * gamma + beta with given statistics, folded into one
// multiply-add per element: y = x * scale_c + shift_c. The statistics are either the
// running mean and variance (inference; invstd = 1/sqrt(var + eps)) or, with `invstd`
// set instead of `var`, a mean/invstd pair computed elsewhere (the normalize step of
// synchronized BN, after batchnorm_moments_finalize).
struct BatchNormForwardInferArgs {
  BatchNormProblem problem;
  double eps = 1e-5;
  const float* x = nullptr;       // [N*C*S]
  const float* mean = nullptr;    // [C] running (or merged batch) mean
  const float* var = nullptr;     // [C] running variance; or nullptr when invstd is given
  const float* invstd = nullptr;  // [C] 1/sqrt(var + eps); only when var is nullptr
  const float* gamma = nullptr;  // [C] or nullptr
  const float* beta = nullptr;   // [C] or nullptr
  float* y = nullptr;            // [N*C*S]; may alias x
  OutputStores stores = OutputStores::automatic;
};

enum class BatchNormStatistics : std::uint8_t {
  batch,   // mean/invstd were computed from this batch (training): full backward
  frozen,  // mean/invstd are constants (running statistics): dx = gamma * invstd * dy
};

// Which gradients the caller needs (PyTorch's output_mask).
struct BatchNormGradMask {
  bool dx = true;
  bool dgamma = true;
  bool dbeta = true;
};

struct BatchNormBackwardArgs {
  BatchNormProblem problem;
  BatchNormStatistics statistics = BatchNormStatistics::batch;
  BatchNormGradMask mask;
  const float* x = nullptr;       // [N*C*S] the forward input
  const float* dy = nullptr;      // [N*C*S]
  const float* mean = nullptr;    // [C] save_mean (batch) or running mean (frozen)
  const float* invstd = nullptr;  // [C] save_invstd (batch) or 1/sqrt(running_var+eps)
  const float* gamma = nullptr;   // [C] or nullptr (gamma = 1)
  float* dx = nullptr;            // [N*C*S] written (=); may alias dy
  float* dgamma = nullptr;        // [C] accumulated (+=)
  float* dbeta = nullptr;         // [C] accumulated (+=)
  std::span<std::byte> workspace;  // batchnorm_workspace_bytes(problem) bytes
  OutputStores stores = OutputStores::automatic;
};

// ---- Entry points. Each checks its arguments (throwing std::invalid_argument with the
// problem string) and runs the first implementation in the ordered list that accepts the
// problem (see batchnorm_implementations()).

std::size_t batchnorm_workspace_bytes(const BatchNormProblem& problem);
void batchnorm_forward_train(const BatchNormForwardTrainArgs& args);
void batchnorm_forward_infer(const BatchNormForwardInferArgs& args);
void batchnorm_backward(const BatchNormBackwardArgs& args);

// Split forward-train for distributed use: moments of the local shard, merge shards,
// finalize into mean/invstd (+ running update), then normalize with batchnorm_forward_infer
// given mean and invstd.
// Sets out.count = N * S and fills out.mean, out.m2. workspace: batchnorm_workspace_bytes(
// problem) bytes, as for forward_train (the chunk partials of channels_last statistics).
void batchnorm_moments(const BatchNormProblem& problem, const float* x, ChannelMoments& out,
                       std::span<std::byte> workspace);
// a <- a merged with b (Chan et al.), a.count included. Channel counts must match.
void batchnorm_moments_merge(std::int64_t channels, ChannelMoments& a, const ChannelMoments& b);
// From merged moments: save_mean, save_invstd, and the running update (unbiased variance).
void batchnorm_moments_finalize(std::int64_t channels, const ChannelMoments& moments, double eps,
                                float* save_mean, float* save_invstd, RunningStatsUpdate running);

// ---- Implementations. An ordered list, best first, reference last. Each may decline a
// problem with a reason (for --verbose and logs). BNORM_IMPL=<name> in the environment
// forces one (reference, cpu_scalar, cpu_avx2) for debugging and tests.
struct BatchNormImpl {
  const char* name;
  // nullptr if this implementation runs the problem here, else why it declines.
  const char* (*declines)(const BatchNormProblem& problem);
  std::size_t (*workspace_bytes)(const BatchNormProblem& problem);
  void (*forward_train)(const BatchNormForwardTrainArgs& args);
  void (*forward_infer)(const BatchNormForwardInferArgs& args);
  void (*backward)(const BatchNormBackwardArgs& args);
  void (*moments)(const BatchNormProblem& problem, const float* x, ChannelMoments out,
                  std::span<std::byte> workspace);
};

std::span<const BatchNormImpl> batchnorm_implementations();
// The implementation the entry points use for this problem (honours BNORM_IMPL).
const BatchNormImpl& batchnorm_select(const BatchNormProblem& problem);
// Calls an implementation directly (tests compare implementations this way).
const BatchNormImpl& batchnorm_impl_by_name(const std::string& name);  // throws if unknown

}  // namespace bnorm
