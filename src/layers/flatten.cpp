// Flatten: a change of shape over the same memory (flatten.hpp), so forward and backward are
// views made by Tensor::reshaped.
#include "bnorm/layers/flatten.hpp"

#include <stdexcept>
#include <string>

namespace bnorm {

Shape Flatten::output_shape(const Shape& input) const {
  if (input.rank() < 2)
    throw std::invalid_argument("flatten expects an input of rank 2 to 5, (N, ...), got " +
                                input.to_string());
  std::int64_t features = 1;
  for (int axis = 1; axis < input.rank(); ++axis) features *= input[axis];
  return Shape{input[0], features};
}

Tensor Flatten::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument("flatten: forward of an undefined tensor");
  const Shape out = output_shape(x.shape());
  input_shape_ = x.shape();
  input_layout_ = x.layout();
  return x.reshaped(out);
}

Tensor Flatten::backward(const Tensor& dy) {
  if (input_shape_.rank() == 0) throw std::logic_error("flatten: backward called before forward");
  const Shape expected = output_shape(input_shape_);
  if (!dy.defined() || !(dy.shape() == expected))
    throw std::invalid_argument("flatten: backward expects dy of shape " + expected.to_string() +
                                " (the output for input " + input_shape_.to_string() + "), got " +
                                (dy.defined() ? dy.describe() : std::string("an undefined tensor")));
  if (!compute_input_grad_) return {};
  return dy.reshaped(input_shape_, input_layout_);
}

}  // namespace bnorm
