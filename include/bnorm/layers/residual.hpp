// bnorm/layers/residual.hpp: y = body(x) + shortcut(x) (He et al. 2016, "Deep Residual
// Learning"). The shortcut is the identity when empty, or a projection (typically a 1x1
// strided conv + BN) when the body changes the shape. The activation after the sum is the
// next layer in the enclosing Sequential, not part of the block.
#pragma once

#include "bnorm/layers/sequential.hpp"

namespace bnorm {

class Residual : public Layer {
 public:
  // An empty shortcut is the identity. The block's train/eval mode and compute_input_grad
  // are pushed to both paths here and whenever they change.
  explicit Residual(Sequential body, Sequential shortcut = Sequential());

  std::string kind() const override { return "residual"; }
  // residual(
  //   body: sequential(...)
  //   shortcut: identity
  // )
  std::string describe() const override;
  // Both paths must give the same shape; otherwise std::invalid_argument names the input and
  // both output shapes.
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  // dx = body's dx + shortcut's dx (dy itself through an identity shortcut).
  Tensor backward(const Tensor& dy) override;
  std::vector<ParameterRef> parameters() override;  // "body.conv1.weight", "shortcut.conv1.weight"
  std::vector<BufferRef> buffers() override;        // "body.bn1.running_mean", ...
  void train(bool on = true) override;
  // Both paths read x, so both first layers follow this flag.
  void set_compute_input_grad(bool on) override;

  Sequential& body() { return body_; }
  Sequential& shortcut() { return shortcut_; }

 private:
  Sequential body_, shortcut_;
  bool forwarded_ = false;
};

}  // namespace bnorm
