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
  // Appends a layer; an empty name becomes kind + counter ("conv1", "bn2"). Duplicate names throw.
  Layer& add(std::unique_ptr<Layer> layer, std::string name = {});

  std::string kind() const override { return "sequential"; }
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::vector<ParameterRef> parameters() override;
  std::vector<BufferRef> buffers() override;
  void train(bool on = true) override;
  // Applies to the first layer only: inner layers always pass gradients on.
  void set_compute_input_grad(bool on) override;

  std::size_t size() const { return layers_.size(); }
  Layer& at(std::size_t i) { return *layers_.at(i); }
  const Layer& at(std::size_t i) const { return *layers_.at(i); }
  const std::string& name_at(std::size_t i) const { return names_.at(i); }

 private:
  std::vector<std::unique_ptr<Layer>> layers_;
  std::vector<std::string> names_;
};

}  // namespace bnorm
