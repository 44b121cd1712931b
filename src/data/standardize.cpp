// Standardization statistics (two passes in double) and their application.
#include "bnorm/data/standardize.hpp"

#include <cmath>
#include <stdexcept>

namespace bnorm {
namespace {

std::string shape_text(const std::vector<std::int64_t>& dims) {
  std::string text = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
  return text + ")";
}

// How many statistics a mode keeps for an example of shape (C, H, W).
std::size_t statistic_count(Standardization mode, const std::vector<std::int64_t>& chw) {
  switch (mode) {
    case Standardization::none: return 0;
    case Standardization::global: return 1;
    case Standardization::per_channel: return static_cast<std::size_t>(chw[0]);
    case Standardization::per_pixel: return static_cast<std::size_t>(chw[0] * chw[1] * chw[2]);
  }
  return 0;
}

// Which statistic the element at (c, p) of an example uses (p = h * W + w).
struct StatIndex {
  Standardization mode;
  std::int64_t plane;  // H * W
  std::int64_t operator()(std::int64_t c, std::int64_t p) const {
    switch (mode) {
      case Standardization::per_channel: return c;
      case Standardization::per_pixel: return c * plane + p;
      default: return 0;
    }
  }
};

}  // namespace

const char* to_string(Standardization mode) {
  switch (mode) {
    case Standardization::none: return "none";
    case Standardization::global: return "global";
    case Standardization::per_channel: return "per-channel";
    case Standardization::per_pixel: return "per-pixel";
  }
  return "?";
}

Standardization parse_standardization(std::string_view name) {
  if (name == "none") return Standardization::none;
  if (name == "global") return Standardization::global;
  if (name == "per-channel" || name == "per_channel") return Standardization::per_channel;
  if (name == "per-pixel" || name == "per_pixel") return Standardization::per_pixel;
  throw std::invalid_argument("unknown standardization \"" + std::string(name) +
                              "\": expected none, global, per-channel or per-pixel");
}

void Standardizer::validate() const {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("Standardizer (" + std::string(to_string(mode)) + ", example shape " +
                                shape_text(example_shape) + ", " + std::to_string(mean.size()) + " means, " +
                                std::to_string(stddev.size()) + " stddevs): " + what);
  };
  if (mode == Standardization::none) {
    if (!mean.empty() || !stddev.empty()) fail("mode none keeps no statistics");
    return;
  }
  if (example_shape.size() != 3) fail("example shape must be (C, H, W)");
  for (std::int64_t d : example_shape)
    if (d < 1) fail("example shape has a non-positive extent");
  const std::size_t expected = statistic_count(mode, example_shape);
  if (mean.size() != expected || stddev.size() != expected)
    fail("expected " + std::to_string(expected) + " of each");
  for (std::size_t i = 0; i < expected; ++i) {
    if (!std::isfinite(mean[i])) fail("mean " + std::to_string(i) + " is not finite");
    if (!(std::isfinite(stddev[i]) && stddev[i] > 0.0f))
      fail("stddev " + std::to_string(i) + " is " + std::to_string(stddev[i]) + ", expected positive and finite");
  }
}

Standardizer fit_standardizer(const Tensor& images, Standardization mode) {
  if (!images.defined() || images.rank() != 4 || images.layout() != Layout::channels_first || images.dim(0) < 1)
    throw std::invalid_argument("fit_standardizer: expected (N, C, H, W) channels_first images with N >= 1, got " +
                                (images.defined() ? images.describe() : std::string("an undefined tensor")));
  Standardizer s;
  s.mode = mode;
  if (mode == Standardization::none) return s;
  const std::int64_t n = images.dim(0), c = images.dim(1), plane = images.dim(2) * images.dim(3);
  s.example_shape = {c, images.dim(2), images.dim(3)};
  const std::size_t stats = statistic_count(mode, s.example_shape);
  const StatIndex stat{mode, plane};
  const float* x = images.data_f32();
  const std::int64_t row = c * plane;

  // Pass 1: sums, then means. Pass 2: squared deviations from those means (no cancellation).
  // Per-position accumulators, examples in the outer loop: the inner loop streams memory.
  std::vector<double> acc(static_cast<std::size_t>(row), 0.0);
  auto accumulate = [&](auto&& term) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (std::int64_t i = 0; i < n; ++i) {
      const float* example = x + i * row;
      for (std::int64_t j = 0; j < row; ++j) acc[j] += term(j, example[j]);
    }
    // Fold positions into statistics.
    std::vector<double> sums(stats, 0.0);
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t p = 0; p < plane; ++p) sums[stat(ch, p)] += acc[ch * plane + p];
    return sums;
  };
  const double per_stat = static_cast<double>(n * row) / static_cast<double>(stats);
  std::vector<double> mean = accumulate([](std::int64_t, float v) { return static_cast<double>(v); });
  for (double& m : mean) m /= per_stat;
  std::vector<double> position_mean(static_cast<std::size_t>(row));
  for (std::int64_t ch = 0; ch < c; ++ch)
    for (std::int64_t p = 0; p < plane; ++p) position_mean[ch * plane + p] = mean[stat(ch, p)];
  std::vector<double> var = accumulate([&](std::int64_t j, float v) {
    const double d = static_cast<double>(v) - position_mean[j];
    return d * d;
  });

  for (std::size_t k = 0; k < stats; ++k) {
    const double sd = std::sqrt(var[k] / per_stat);
    s.mean.push_back(static_cast<float>(mean[k]));
    s.stddev.push_back(sd < standardize_min_stddev ? 1.0f : static_cast<float>(sd));
  }
  return s;
}

void Standardizer::apply(Tensor& images) const {
  if (mode == Standardization::none) return;
  validate();
  if (!images.defined() || images.rank() != 4 || images.dim(1) != example_shape[0] ||
      images.dim(2) != example_shape[1] || images.dim(3) != example_shape[2])
    throw std::invalid_argument("Standardizer::apply: statistics are for examples of " + shape_text(example_shape) +
                                ", got images " +
                                (images.defined() ? images.describe() : std::string("(undefined)")));
  const std::int64_t n = images.dim(0), c = example_shape[0], plane = example_shape[1] * example_shape[2];
  const std::int64_t row = c * plane;
  // Per-position scale and shift, in the tensor's memory order: x' = x * scale + shift with
  // scale = 1 / std, shift = -mean / std would round differently from (x - mean) / std, so keep
  // the subtraction and multiply by the reciprocal.
  const StatIndex stat{mode, plane};
  const bool last = images.layout() == Layout::channels_last;
  std::vector<float> position_mean(static_cast<std::size_t>(row)), position_inv(static_cast<std::size_t>(row));
  for (std::int64_t ch = 0; ch < c; ++ch)
    for (std::int64_t p = 0; p < plane; ++p) {
      const std::int64_t j = last ? p * c + ch : ch * plane + p;
      position_mean[j] = mean[stat(ch, p)];
      position_inv[j] = 1.0f / stddev[stat(ch, p)];
    }
  float* x = images.data_f32();
#pragma omp parallel for schedule(static) if (n * row > (1 << 20))
  for (std::int64_t i = 0; i < n; ++i) {
    float* example = x + i * row;
    for (std::int64_t j = 0; j < row; ++j) example[j] = (example[j] - position_mean[j]) * position_inv[j];
  }
}

}  // namespace bnorm
