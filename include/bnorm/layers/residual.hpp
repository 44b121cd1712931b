// bnorm/layers/residual.hpp: y = body(x) + shortcut(x) (He et al. 2016, "Deep Residual
// Learning"). The shortcut is the identity when empty, or a projection (typically a 1x1
// strided conv + BN) when the body changes the shape. The activation after the sum is the
// next layer in the enclosing Sequential, not part of the block.
#pragma once

#include "bnorm/layers/sequential.hpp"

namespace bnorm {

class Residual : public Layer {
 public:
  Residual(Sequential body, Sequential shortcut);

  std::string kind() const override { return "residual"; }
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override;
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::vector<ParameterRef> parameters() override;  // "body.conv1.weight", "shortcut.conv1.weight"
  std::vector<BufferRef> buffers() override;
  void train(bool on = true) override;

  Sequential& body() { return body_; }
  Sequential& shortcut() { return shortcut_; }

 private:
  Sequential body_, shortcut_;
};

}  // namespace bnorm
