// bnorm/layers/layer.hpp: the contract every layer keeps (Linear, Conv2d, pools, activations,
// Dropout, Flatten, Residual, Sequential, BatchNorm).
//
// A layer is Caffe's uniform contract in PyTorch's vocabulary:
//   output_shape(in)  validates an input shape and says what forward will return; a mismatch
//                     throws std::invalid_argument that prints the layer and every shape involved;
//   forward(x)        computes y; in training mode it keeps what backward needs (a reference to
//                     x or to y, never a copy unless the math needs one);
//   backward(dy)      returns dx (written, "="), and ADDS the parameter gradients to each
//                     parameter's grad ("+="); zero_grad() clears them. Calling backward before a
//                     forward throws std::logic_error. When compute_input_grad is off (the first
//                     layer of a network) backward may return an undefined Tensor and skip dx.
// Parameters are learned (weights, biases, BN gamma/beta); buffers are not (BN running
// statistics, counters). Both are exposed by reference, with names relative to the layer
// ("weight", "running_mean"); containers prefix them ("conv1.weight") so that a model file
// has one flat namespace, as in PyTorch's state_dict.
//
// Layout: rank-4 activations carry their layout (channels_first or channels_last) in the
// Tensor; a layer built for one layout rejects the other rather than copying silently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bnorm/tensor/tensor.hpp"

namespace bnorm {

// What a parameter is for, so that optimizers can treat kinds apart (weight decay is usually
// not applied to biases and normalization parameters).
enum class ParameterRole : std::uint8_t {
  weight,  // Linear/Conv weights
  bias,    // Linear/Conv biases
  norm,    // BatchNorm gamma (weight) and beta (bias)
};
const char* to_string(ParameterRole role);

struct ParameterRef {
  std::string name;  // "weight", or "conv1.weight" once a container prefixed it
  Tensor* value = nullptr;
  Tensor* grad = nullptr;  // same shape as value
  ParameterRole role = ParameterRole::weight;
};

// Sets the gradients of the parameters to zero in one parallel pass, each parameter split
// between threads as the optimizer splits its update (bnorm/util/parallel.hpp), so that each
// thread clears the elements it will update.
void clear_gradients(const std::vector<ParameterRef>& parameters);

// A non-learned piece of state that a model file must keep. Exactly one of tensor / count is set.
struct BufferRef {
  std::string name;
  Tensor* tensor = nullptr;        // f32 (BN running_mean, running_var)
  std::int64_t* count = nullptr;   // i64 scalar (BN num_batches_tracked, Dropout's step)
};

class Layer {
 public:
  virtual ~Layer() = default;

  // The spec word that builds this layer ("linear", "conv", "bn", "relu", ...).
  virtual std::string kind() const = 0;
  // One line with the options: "linear(784 -> 100, bias=false)".
  virtual std::string describe() const = 0;

  virtual Shape output_shape(const Shape& input) const = 0;
  virtual Tensor forward(const Tensor& x) = 0;
  virtual Tensor backward(const Tensor& dy) = 0;

  virtual std::vector<ParameterRef> parameters() { return {}; }
  virtual std::vector<BufferRef> buffers() { return {}; }

  // Containers forward these to their children.
  virtual void train(bool on = true) { training_ = on; }
  void eval() { train(false); }
  bool is_training() const { return training_; }
  virtual void set_compute_input_grad(bool on) { compute_input_grad_ = on; }
  bool compute_input_grad() const { return compute_input_grad_; }

  // Sets every parameter gradient to zero.
  void zero_grad();
  std::int64_t parameter_count();

 protected:
  bool training_ = true;
  bool compute_input_grad_ = true;
};

}  // namespace bnorm
