#include "bnorm/layers/batchnorm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

namespace bnorm {

BatchNorm::BatchNorm(const char* name, std::vector<int> accepted_ranks,
                     const BatchNormOptions& options)
    : name_(name), accepted_ranks_(std::move(accepted_ranks)), options_(options) {
  const std::int64_t c = options.num_features;
  if (c < 1)
    throw std::invalid_argument(std::string(name_) + ": num_features must be >= 1, got " +
                                std::to_string(c));
  if (!(options.eps >= 0))
    throw std::invalid_argument(std::string(name_) + ": eps must be >= 0");
  if (options.momentum && !(*options.momentum >= 0 && *options.momentum <= 1))
    throw std::invalid_argument(std::string(name_) + ": momentum must be in [0, 1] or none, got " +
                                std::to_string(*options.momentum));
  if (options.affine) {
    weight_ = Tensor::full({c}, 1.0f);
    bias_ = Tensor::zeros({c});
    weight_grad_ = Tensor::zeros({c});
    bias_grad_ = Tensor::zeros({c});
  }
  if (options.track_running_stats) {
    running_mean_ = Tensor::zeros({c});
    running_var_ = Tensor::full({c}, 1.0f);
  }
  saved_mean_ = Tensor::zeros({c});
  saved_invstd_ = Tensor::zeros({c});
}

std::string BatchNorm::describe() const {
  char momentum[32] = "none";
  if (options_.momentum) std::snprintf(momentum, sizeof momentum, "%g", *options_.momentum);
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, "%s(%lld, eps=%g, momentum=%s%s%s)", name_,
                static_cast<long long>(options_.num_features), options_.eps, momentum,
                options_.affine ? "" : ", affine=false",
                options_.track_running_stats ? "" : ", track_running_stats=false");
  return buffer;
}

std::vector<ParameterRef> BatchNorm::parameters() {
  if (!options_.affine) return {};
  return {{.name = "weight", .value = &weight_, .grad = &weight_grad_, .role = ParameterRole::norm},
          {.name = "bias", .value = &bias_, .grad = &bias_grad_, .role = ParameterRole::norm}};
}

std::vector<BufferRef> BatchNorm::buffers() {
  if (!options_.track_running_stats) return {};
  return {{.name = "running_mean", .tensor = &running_mean_},
          {.name = "running_var", .tensor = &running_var_},
          {.name = "num_batches_tracked", .count = &num_batches_tracked_}};
}

void BatchNorm::reset_running_stats() {
  if (!options_.track_running_stats) return;
  std::fill_n(running_mean_.data_f32(), running_mean_.numel(), 0.0f);
  std::fill_n(running_var_.data_f32(), running_var_.numel(), 1.0f);
  num_batches_tracked_ = 0;
}

std::string BatchNorm::describe_expected() const {
  std::string ranks;
  for (int r : accepted_ranks_) ranks += (ranks.empty() ? "" : " or ") + std::to_string(r);
  return std::string(name_) + "(num_features=" + std::to_string(options_.num_features) +
         ", layout=" + to_string(options_.layout) + ") expects an input of rank " + ranks +
         " with C=" + std::to_string(options_.num_features) + " at dimension 1";
}

Shape BatchNorm::output_shape(const Shape& input) const {
  if (std::find(accepted_ranks_.begin(), accepted_ranks_.end(), input.rank()) == accepted_ranks_.end() ||
      input[1] != options_.num_features)
    throw std::invalid_argument(describe_expected() + ", got " + input.to_string());
  return input;
}

BatchNormProblem BatchNorm::check_input(const Tensor& x) const {
  if (!x.defined()) throw std::invalid_argument(describe_expected() + ", got an undefined tensor");
  if (std::find(accepted_ranks_.begin(), accepted_ranks_.end(), x.rank()) == accepted_ranks_.end())
    throw std::invalid_argument(describe_expected() + ", got " + x.describe());
  if (x.dim(1) != options_.num_features)
    throw std::invalid_argument(describe_expected() + ", got " + x.describe());
  // A (N, C) input has one layout only; for ranks above 2 the layout must match.
  if (x.rank() > 2 && x.layout() != options_.layout)
    throw std::invalid_argument(describe_expected() + ", got " + x.describe());
  if (x.dtype() != DType::f32 || x.device() != Device::cpu)
    throw std::invalid_argument(describe_expected() + " (f32 on cpu), got " + x.describe());
  return BatchNormProblem::from_shape(x.shape(), options_.layout);
}

std::span<std::byte> BatchNorm::workspace_for(const BatchNormProblem& problem) {
  const std::size_t bytes = batchnorm_workspace_bytes(problem);
  if (workspace_.size() < bytes) workspace_.resize(bytes);
  return {workspace_.data(), bytes};
}

Tensor BatchNorm::forward(const Tensor& x) {
  const BatchNormProblem problem = check_input(x);
  Tensor y = Tensor::empty(x.shape(), x.layout());
  const float* gamma = options_.affine ? weight_.data_f32() : nullptr;
  const float* beta = options_.affine ? bias_.data_f32() : nullptr;
  const bool use_batch_stats = training_ || !options_.track_running_stats;

  if (use_batch_stats) {
    RunningStatsUpdate running;
    if (training_ && options_.track_running_stats) {
      if (problem.values_per_channel() > 1) ++num_batches_tracked_;  // the kernel throws otherwise
      running = {.mean = running_mean_.data_f32(),
                 .var = running_var_.data_f32(),
                 .factor = running_average_factor(options_.momentum,
                                                  std::max<std::int64_t>(num_batches_tracked_, 1))};
    }
    batchnorm_forward_train({.problem = problem,
                             .eps = options_.eps,
                             .x = x.data_f32(),
                             .gamma = gamma,
                             .beta = beta,
                             .y = y.data_f32(),
                             .save_mean = saved_mean_.data_f32(),
                             .save_invstd = saved_invstd_.data_f32(),
                             .running = running,
                             .workspace = workspace_for(problem)});
    saved_statistics_ = BatchNormStatistics::batch;
  } else {
    batchnorm_forward_infer({.problem = problem,
                             .eps = options_.eps,
                             .x = x.data_f32(),
                             .mean = running_mean_.data_f32(),
                             .var = running_var_.data_f32(),
                             .gamma = gamma,
                             .beta = beta,
                             .y = y.data_f32()});
    // For a backward through eval mode: the statistics are constants.
    const float* rm = running_mean_.data_f32();
    const float* rv = running_var_.data_f32();
    float* mean = saved_mean_.data_f32();
    float* invstd = saved_invstd_.data_f32();
    for (std::int64_t c = 0; c < options_.num_features; ++c) {
      mean[c] = rm[c];
      invstd[c] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(rv[c]) + options_.eps));
    }
    saved_statistics_ = BatchNormStatistics::frozen;
  }
  saved_input_ = x;
  return y;
}

Tensor BatchNorm::backward(const Tensor& dy) {
  if (!saved_input_.defined())
    throw std::logic_error(std::string(name_) + ": backward called before forward");
  if (!(dy.shape() == saved_input_.shape()) || (dy.rank() > 2 && dy.layout() != saved_input_.layout()))
    throw std::invalid_argument(std::string(name_) + ": backward expects dy shaped like the input " +
                                saved_input_.describe() + ", got " + dy.describe());
  const BatchNormProblem problem = BatchNormProblem::from_shape(dy.shape(), options_.layout);
  Tensor dx = compute_input_grad_ ? Tensor::empty(dy.shape(), dy.layout()) : Tensor();
  batchnorm_backward({.problem = problem,
                      .statistics = saved_statistics_,
                      .mask = {.dx = compute_input_grad_, .dgamma = options_.affine, .dbeta = options_.affine},
                      .x = saved_input_.data_f32(),
                      .dy = dy.data_f32(),
                      .mean = saved_mean_.data_f32(),
                      .invstd = saved_invstd_.data_f32(),
                      .gamma = options_.affine ? weight_.data_f32() : nullptr,
                      .dx = compute_input_grad_ ? dx.data_f32() : nullptr,
                      .dgamma = options_.affine ? weight_grad_.data_f32() : nullptr,
                      .dbeta = options_.affine ? bias_grad_.data_f32() : nullptr,
                      .workspace = workspace_for(problem)});
  return dx;
}

}  // namespace bnorm
