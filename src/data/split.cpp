// select_examples and the seeded validation split.
#include "bnorm/data/split.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <stdexcept>

#include "bnorm/util/random.hpp"

namespace bnorm {

Dataset select_examples(const Dataset& data, std::span<const std::int64_t> indices) {
  const std::int64_t n = data.size();
  const auto count = static_cast<std::int64_t>(indices.size());
  for (std::int64_t index : indices)
    if (index < 0 || index >= n)
      throw std::out_of_range("select_examples: index " + std::to_string(index) + " outside [0, " +
                              std::to_string(n) + ") of a dataset of " + data.describe());
  Dataset out;
  out.images = Tensor::empty(Shape{count, data.channels(), data.height(), data.width()});
  out.num_classes = data.num_classes;
  out.class_names = data.class_names;
  out.labels.resize(static_cast<std::size_t>(count));
  const std::int64_t row = data.example_numel();
  const float* src = data.images.data_f32();
  float* dst = out.images.data_f32();
#pragma omp parallel for schedule(static) if (count * row > (1 << 20))
  for (std::int64_t i = 0; i < count; ++i) {
    std::memcpy(dst + i * row, src + indices[i] * row, static_cast<std::size_t>(row) * sizeof(float));
    out.labels[i] = data.labels[indices[i]];
  }
  return out;
}

TrainValidationSplit split_validation(const Dataset& data, const ValidationSplitOptions& options) {
  const std::int64_t n = data.size();
  if (options.count.has_value() == options.fraction.has_value())
    throw std::invalid_argument("split_validation: set exactly one of count and fraction");
  std::int64_t count = 0;
  if (options.count) {
    count = *options.count;
    if (count < 0 || count > n)
      throw std::invalid_argument("split_validation: count " + std::to_string(count) + " outside [0, " +
                                  std::to_string(n) + "] for a dataset of " + data.describe());
  } else {
    const double fraction = *options.fraction;
    if (!(fraction >= 0.0 && fraction <= 1.0))
      throw std::invalid_argument("split_validation: fraction " + std::to_string(fraction) +
                                  " outside [0, 1]");
    count = std::llround(fraction * static_cast<double>(n));
  }

  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  Rng rng(options.seed);
  // Fisher-Yates, stopped once the first `count` places are drawn: they are a uniform subset.
  for (std::int64_t i = 0; i < count && i + 1 < n; ++i)
    std::swap(order[i], order[i + rng.below(static_cast<std::uint64_t>(n - i))]);
  std::vector<std::int64_t> validation(order.begin(), order.begin() + count);
  std::vector<std::int64_t> train(order.begin() + count, order.end());
  std::sort(validation.begin(), validation.end());
  std::sort(train.begin(), train.end());
  return {.train = select_examples(data, train), .validation = select_examples(data, validation)};
}

}  // namespace bnorm
