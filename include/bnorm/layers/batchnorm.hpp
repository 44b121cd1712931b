// bnorm/layers/batchnorm.hpp: the batch-normalization layer (BatchNorm1d/2d/3d).
//
// What it represents: PyTorch's torch.nn.BatchNorm{1,2,3}d, with the same options, the same
// parameters (weight = gamma, bias = beta) and buffers (running_mean, running_var,
// num_batches_tracked), and the same train/eval semantics:
//   train,  track_running_stats: normalize with batch statistics, update the running ones;
//   eval,   track_running_stats: normalize with the running statistics;
//   either, !track_running_stats: always batch statistics (there are no running ones).
// Conventions (momentum, biased/unbiased variance, gradient accumulation) are those of
// bnorm/kernels/batchnorm.hpp.
//
// forward(x) keeps a reference to x (no copy) for backward: do not modify x in between.
// backward(dy) returns dx and ADDS the parameter gradients to weight_grad / bias_grad;
// zero_grad() clears them. The mode of the backward follows the forward it belongs to:
// after a forward with running statistics it is the frozen-statistics backward.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "bnorm/kernels/batchnorm.hpp"
#include "bnorm/layers/layer.hpp"
#include "bnorm/tensor/tensor.hpp"

namespace bnorm {

struct BatchNormOptions {
  std::int64_t num_features = 0;
  double eps = 1e-5;
  std::optional<double> momentum = 0.1;  // nullopt: cumulative average
  bool affine = true;
  bool track_running_stats = true;
  Layout layout = Layout::channels_first;
};

class BatchNorm : public Layer {
 public:
  // accepted_ranks: the input ranks accepted (1d: {2, 3}; 2d: {4}; 3d: {5}).
  BatchNorm(const char* name, std::vector<int> accepted_ranks, const BatchNormOptions& options);

  std::string kind() const override { return "bn"; }
  std::string describe() const override;  // "BatchNorm2d(64, eps=1e-05, momentum=0.1)"
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  // weight, bias (role norm; absent without affine).
  std::vector<ParameterRef> parameters() override;
  // running_mean, running_var, num_batches_tracked (absent without track_running_stats).
  std::vector<BufferRef> buffers() override;
  // Clears running_mean to 0, running_var to 1 and num_batches_tracked to 0.
  void reset_running_stats();

  const BatchNormOptions& options() const { return options_; }
  // Parameters (undefined when affine is off) and their gradients.
  Tensor& weight() { return weight_; }
  Tensor& bias() { return bias_; }
  const Tensor& weight_grad() const { return weight_grad_; }
  const Tensor& bias_grad() const { return bias_grad_; }
  // Buffers (undefined when track_running_stats is off).
  Tensor& running_mean() { return running_mean_; }
  Tensor& running_var() { return running_var_; }
  std::int64_t num_batches_tracked() const { return num_batches_tracked_; }
  void set_num_batches_tracked(std::int64_t n) { num_batches_tracked_ = n; }

 private:
  BatchNormProblem check_input(const Tensor& x) const;
  std::string describe_expected() const;
  std::span<std::byte> workspace_for(const BatchNormProblem& problem);

  const char* name_;
  std::vector<int> accepted_ranks_;
  BatchNormOptions options_;

  Tensor weight_, bias_, weight_grad_, bias_grad_;  // [C]
  Tensor running_mean_, running_var_;               // [C]
  std::int64_t num_batches_tracked_ = 0;

  // Saved by forward for backward.
  Tensor saved_input_;
  Tensor saved_mean_, saved_invstd_;  // [C]
  BatchNormStatistics saved_statistics_ = BatchNormStatistics::batch;
  std::vector<std::byte> workspace_;
};

// (N, C) or (N, C, L).
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(const BatchNormOptions& options) : BatchNorm("BatchNorm1d", {2, 3}, options) {}
};
// (N, C, H, W).
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(const BatchNormOptions& options) : BatchNorm("BatchNorm2d", {4}, options) {}
};
// (N, C, D, H, W).
class BatchNorm3d : public BatchNorm {
 public:
  explicit BatchNorm3d(const BatchNormOptions& options) : BatchNorm("BatchNorm3d", {5}, options) {}
};

}  // namespace bnorm
