// bnorm/layers/sequential.hpp: layers applied in order, each with a unique name.
//
// Parameter and buffer names are prefixed with the layer's name ("conv1.weight",
// "bn1.running_mean"), PyTorch's state_dict convention. Sequential is itself a Layer, so
// it nests (the body of a Residual block is one).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bnorm/layers/layer.hpp"

namespace bnorm {

class Sequential : public Layer {
 public:
  // Appends a layer and returns it. An empty name becomes kind + counter ("conv1", "bn2"): the
  // number of layers of that kind so far plus one, or the next free number if a layer was
  // named so by hand. Names are non-empty and contain no '.' (it separates the levels of
  // parameter names); a null layer, a bad or duplicate name throws std::invalid_argument.
  // The layer takes the container's train/eval mode. A layer computes its input gradient when
  // the container's compute_input_grad is on or some layer before it has parameters: with it
  // off, the parameter-free layers in front of the first learned one (a Flatten before a
  // Linear) are skipped in backward, and that first learned layer does not compute dx, as
  // autograd would not for an input that requires no gradient.
  Layer& add(std::unique_ptr<Layer> layer, std::string name = {});

  std::string kind() const override { return "sequential"; }
  // One line per layer, "name: describe()", nested containers indented:
  //   sequential(
  //     bn1: BatchNorm2d(3, eps=1e-05, momentum=0.100000)
  //     relu1: relu
  //   )
  std::string describe() const override;
  // Chains output_shape through the layers; an empty Sequential is the identity. A layer's
  // std::invalid_argument is rethrown prefixed with its index, name and the input it
  // rejected: "sequential: layer 2 'bn2' rejected input (2, 18): ...". forward and backward
  // add the same context to their errors.
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::vector<ParameterRef> parameters() override;
  std::vector<BufferRef> buffers() override;
  void train(bool on = true) override;
  // Applies to the layers up to and including the first one with parameters (see add()).
  void set_compute_input_grad(bool on) override;

  std::size_t size() const { return layers_.size(); }
  bool empty() const { return layers_.empty(); }
  Layer& at(std::size_t i) { return *layers_.at(i); }
  const Layer& at(std::size_t i) const { return *layers_.at(i); }
  const std::string& name_at(std::size_t i) const { return names_.at(i); }

 private:
  std::string layer_context(std::size_t i) const;  // "sequential: layer 2 'bn2'"
  void update_input_grads();  // sets each layer's compute_input_grad and first_backward_

  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::string> names_;
  std::size_t first_backward_ = 0;  // backward runs layers [first_backward_, size())
  bool forwarded_ = false;  // for the "backward before forward" check when empty
};

}  // namespace bnorm
