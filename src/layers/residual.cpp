// Residual block: y = body(x) + shortcut(x) (residual.hpp).
#include "bnorm/layers/residual.hpp"

#include <stdexcept>
#include <string>

#include "layers/container_text.hpp"

namespace bnorm {
namespace {

constexpr std::int64_t parallel_min_elements = 1 << 15;  // as in activation.cpp

std::string describe_or_undefined(const Tensor& t) {
  return t.defined() ? t.describe() : std::string("an undefined tensor");
}

// a + b into a new tensor: neither may be overwritten, since a path may return its input
// itself (identity shortcut, Dropout in eval, Flatten's view).
Tensor sum_of(const Tensor& a, const Tensor& b) {
  Tensor out = Tensor::empty(a.shape(), a.layout());
  const float* pa = a.data_f32();
  const float* pb = b.data_f32();
  float* po = out.data_f32();
  const std::int64_t n = a.numel();
#pragma omp parallel for schedule(static) if (n >= parallel_min_elements)
  for (std::int64_t i = 0; i < n; ++i) po[i] = pa[i] + pb[i];
  return out;
}

bool same_shape_and_layout(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && (a.rank() <= 2 || a.layout() == b.layout());
}

template <class T>
void prefix_names(std::vector<T>& refs, const std::string& prefix) {
  for (T& r : refs) r.name = prefix + r.name;
}

}  // namespace

Residual::Residual(Sequential body, Sequential shortcut)
    : body_(std::move(body)), shortcut_(std::move(shortcut)) {
  train(training_);
  set_compute_input_grad(compute_input_grad_);
}

std::string Residual::describe() const {
  return "residual(\n  body: " + detail::indent_continuation_lines(body_.describe()) + "\n  shortcut: " +
         (shortcut_.empty() ? std::string("identity") : detail::indent_continuation_lines(shortcut_.describe())) +
         "\n)";
}

Shape Residual::output_shape(const Shape& input) const {
  auto path_shape = [&](const Sequential& path, const char* name) {
    try {
      return path.output_shape(input);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("residual: ") + name + " rejected input " +
                                  input.to_string() + ": " + e.what());
    }
  };
  const Shape body = path_shape(body_, "body");
  const Shape shortcut = path_shape(shortcut_, "shortcut");
  if (!(body == shortcut))
    throw std::invalid_argument("residual: for input " + input.to_string() + " the body gives " +
                                body.to_string() + " but the shortcut gives " + shortcut.to_string() +
                                "; both paths must give the same shape (a projection shortcut "
                                "must match the body)");
  return body;
}

Tensor Residual::forward(const Tensor& x) {
  auto path_output = [&](Sequential& path, const char* name) {
    try {
      return path.forward(x);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("residual: ") + name + " failed on input " +
                                  describe_or_undefined(x) + ": " + e.what());
    }
  };
  const Tensor from_body = path_output(body_, "body");
  const Tensor from_shortcut = path_output(shortcut_, "shortcut");
  if (!same_shape_and_layout(from_body, from_shortcut))
    throw std::invalid_argument("residual: for input " + describe_or_undefined(x) + " the body gives " +
                                from_body.describe() + " but the shortcut gives " +
                                from_shortcut.describe() + "; both paths must give the same shape and layout");
  forwarded_ = true;
  return sum_of(from_body, from_shortcut);
}

Tensor Residual::backward(const Tensor& dy) {
  if (!forwarded_) throw std::logic_error("residual: backward called before forward");
  const Tensor dx_body = body_.backward(dy);
  const Tensor dx_shortcut = shortcut_.backward(dy);
  if (!compute_input_grad_) return {};
  if (!dx_body.defined() || !dx_shortcut.defined() || !same_shape_and_layout(dx_body, dx_shortcut))
    throw std::logic_error("residual: the paths' input gradients differ: body " +
                           describe_or_undefined(dx_body) + ", shortcut " +
                           describe_or_undefined(dx_shortcut));
  return sum_of(dx_body, dx_shortcut);
}

std::vector<ParameterRef> Residual::parameters() {
  std::vector<ParameterRef> all = body_.parameters();
  prefix_names(all, "body.");
  std::vector<ParameterRef> from_shortcut = shortcut_.parameters();
  prefix_names(from_shortcut, "shortcut.");
  all.insert(all.end(), from_shortcut.begin(), from_shortcut.end());
  return all;
}

std::vector<BufferRef> Residual::buffers() {
  std::vector<BufferRef> all = body_.buffers();
  prefix_names(all, "body.");
  std::vector<BufferRef> from_shortcut = shortcut_.buffers();
  prefix_names(from_shortcut, "shortcut.");
  all.insert(all.end(), from_shortcut.begin(), from_shortcut.end());
  return all;
}

void Residual::train(bool on) {
  training_ = on;
  body_.train(on);
  shortcut_.train(on);
}

void Residual::set_compute_input_grad(bool on) {
  compute_input_grad_ = on;
  body_.set_compute_input_grad(on);
  shortcut_.set_compute_input_grad(on);
}

}  // namespace bnorm
