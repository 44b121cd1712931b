// Inverted dropout with a counter-based mask: element i of training call `step` is dropped when
// counter_uniform(seed, step, i) < p, so the mask is a function of (seed, step, i) alone and
// the same for any thread count or split of the loop (dropout.hpp).
#include "bnorm/layers/dropout.hpp"

#include <cstdio>
#include <stdexcept>
#include <string>

#include "bnorm/util/random.hpp"

namespace bnorm {
namespace {

constexpr std::int64_t parallel_min_elements = 1 << 15;  // as in activation.cpp

std::string describe_or_undefined(const Tensor& t) {
  return t.defined() ? t.describe() : std::string("an undefined tensor");
}

}  // namespace

Dropout::Dropout(const DropoutOptions& options) : options_(options) {
  if (!(options.p >= 0.0 && options.p < 1.0))  // also rejects NaN
    throw std::invalid_argument("dropout: p must be in [0, 1), got " + std::to_string(options.p));
}

std::string Dropout::describe() const {
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "dropout(p=%g, seed=%llu)", options_.p,
                static_cast<unsigned long long>(options_.seed));
  return buffer;
}

std::vector<BufferRef> Dropout::buffers() { return {{.name = "step", .count = &step_}}; }

Tensor Dropout::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("dropout: forward of an undefined tensor");
  saved_shape_ = x.shape();
  saved_layout_ = x.layout();
  if (!training_) {
    saved_ = Saved::identity;
    return x;
  }
  const auto stream = static_cast<std::uint64_t>(step_++);
  if (options_.p == 0.0) {
    saved_ = Saved::identity;
    return x;
  }
  const std::int64_t n = x.numel();
  const float p = static_cast<float>(options_.p);
  const float scale = static_cast<float>(1.0 / (1.0 - options_.p));
  const std::uint64_t seed = options_.seed;
  mask_.resize(static_cast<std::size_t>(n));
  Tensor y = Tensor::empty(x.shape(), x.layout());
  const float* in = x.data_f32();
  float* out = y.data_f32();
  std::uint8_t* mask = mask_.data();
#pragma omp parallel for schedule(static) if (n >= parallel_min_elements)
  for (std::int64_t i = 0; i < n; ++i) {
    const bool keep = !(counter_uniform(seed, stream, static_cast<std::uint64_t>(i)) < p);
    mask[i] = keep;
    out[i] = keep ? in[i] * scale : 0.0f;
  }
  saved_ = Saved::masked;
  return y;
}

Tensor Dropout::backward(const Tensor& dy) {
  if (saved_ == Saved::nothing) throw std::logic_error("dropout: backward called before forward");
  if (!dy.defined() || !(dy.shape() == saved_shape_) ||
      (dy.rank() > 2 && dy.layout() != saved_layout_))
    throw std::invalid_argument("dropout: backward expects dy shaped like the output " +
                                saved_shape_.to_string() + " " + to_string(saved_layout_) +
                                ", got " + describe_or_undefined(dy));
  if (!compute_input_grad_) return {};
  if (saved_ == Saved::identity) return dy;
  const std::int64_t n = dy.numel();
  const float scale = static_cast<float>(1.0 / (1.0 - options_.p));
  Tensor dx = Tensor::empty(dy.shape(), dy.layout());
  const float* g = dy.data_f32();
  float* out = dx.data_f32();
  const std::uint8_t* mask = mask_.data();
#pragma omp parallel for schedule(static) if (n >= parallel_min_elements)
  for (std::int64_t i = 0; i < n; ++i) out[i] = mask[i] ? g[i] * scale : 0.0f;
  return dx;
}

}  // namespace bnorm
