// BatchLoader: per-epoch Fisher-Yates order, batch gathering, resumable state.
#include "bnorm/data/loader.hpp"

#include <cstring>
#include <numeric>
#include <stdexcept>

namespace bnorm {

Tensor gather_examples(const Tensor& images, const std::vector<std::int64_t>& indices, Layout layout) {
  if (!images.defined() || images.rank() != 4 || images.layout() != Layout::channels_first)
    throw std::invalid_argument("gather_examples: expected (N, C, H, W) channels_first images, got " +
                                (images.defined() ? images.describe() : std::string("an undefined tensor")));
  const std::int64_t n = images.dim(0), c = images.dim(1), plane = images.dim(2) * images.dim(3);
  const std::int64_t row = c * plane;
  const auto count = static_cast<std::int64_t>(indices.size());
  for (std::int64_t index : indices)
    if (index < 0 || index >= n)
      throw std::out_of_range("gather_examples: index " + std::to_string(index) + " outside [0, " +
                              std::to_string(n) + ") of images " + images.describe());
  Tensor x = Tensor::empty(Shape{count, c, images.dim(2), images.dim(3)}, layout);
  const float* src = images.data_f32();
  float* dst = x.data_f32();
  // For one channel both layouts are the same bytes; otherwise (C, HW) -> (HW, C) per example.
  const bool transpose = layout == Layout::channels_last && c > 1;
#pragma omp parallel for schedule(static) if (count * row > (1 << 18))
  for (std::int64_t i = 0; i < count; ++i) {
    const float* from = src + indices[i] * row;
    float* to = dst + i * row;
    if (!transpose) {
      std::memcpy(to, from, static_cast<std::size_t>(row) * sizeof(float));
    } else {
      for (std::int64_t p = 0; p < plane; ++p)
        for (std::int64_t ch = 0; ch < c; ++ch) to[p * c + ch] = from[ch * plane + p];
    }
  }
  return x;
}

BatchLoader::BatchLoader(const Dataset& data, const BatchLoaderOptions& options)
    : data_(data), options_(options) {
  if (options.batch_size < 1)
    throw std::invalid_argument("BatchLoader: batch_size must be at least 1, got " + std::to_string(options.batch_size));
  data_.validate();
  if (data_.size() == 0) throw std::invalid_argument("BatchLoader: the dataset is empty (" + data_.describe() + ")");
  state_.rng = Rng(options.seed).state();
  start_epoch();
}

void BatchLoader::start_epoch() {
  order_.resize(static_cast<std::size_t>(data_.size()));
  std::iota(order_.begin(), order_.end(), std::int64_t{0});
  Rng rng;
  rng.set_state(state_.rng);
  if (options_.shuffle) {
    // Fisher-Yates (Durstenfeld): position i takes a uniform pick among the first i + 1.
    for (std::int64_t i = data_.size() - 1; i > 0; --i)
      std::swap(order_[i], order_[rng.below(static_cast<std::uint64_t>(i + 1))]);
  }
  rng_after_ = rng.state();
}

std::int64_t BatchLoader::batches_per_epoch() const {
  const std::int64_t n = data_.size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

bool BatchLoader::next(Batch& batch) {
  const std::int64_t n = data_.size();
  const std::int64_t remaining = n - state_.position;
  const std::int64_t take = std::min(remaining, options_.batch_size);
  if (take == 0 || (options_.drop_last && take < options_.batch_size)) {
    state_ = {.epoch = state_.epoch + 1, .position = 0, .rng = rng_after_};
    start_epoch();
    return false;
  }
  batch.indices.assign(order_.begin() + state_.position, order_.begin() + state_.position + take);
  batch.labels.resize(static_cast<std::size_t>(take));
  for (std::int64_t i = 0; i < take; ++i) batch.labels[i] = data_.labels[batch.indices[i]];
  batch.x = gather_examples(data_.images, batch.indices, options_.layout);
  state_.position += take;
  return true;
}

void BatchLoader::set_state(const LoaderState& state) {
  if (state.epoch < 0 || state.position < 0 || state.position > data_.size())
    throw std::invalid_argument("BatchLoader::set_state: epoch " + std::to_string(state.epoch) + ", position " +
                                std::to_string(state.position) + " do not fit a dataset of " +
                                std::to_string(data_.size()) + " examples");
  if (state.rng == Rng::State{})
    throw std::invalid_argument("BatchLoader::set_state: the generator state is all zero, which xoshiro256** "
                                "never reaches (a state that was not saved?)");
  state_ = state;
  start_epoch();
}

}  // namespace bnorm
