// bnorm/layers/dropout.hpp: inverted dropout (Srivastava et al. 2014).
//
// Training: each element is kept with probability 1-p and scaled by 1/(1-p), so eval mode is
// the identity. The mask of call number `step` is counter_uniform(seed, step, element index)
// < p (bnorm/util/random.hpp): it does not depend on the thread count, and `step` is a buffer,
// so a model file or checkpoint restores the exact sequence of masks.
#pragma once

#include <cstdint>
#include <vector>

#include "bnorm/layers/layer.hpp"

namespace bnorm {

struct DropoutOptions {
  double p = 0.5;  // probability of dropping, in [0, 1)
  std::uint64_t seed = 0;
};

class Dropout : public Layer {
 public:
  explicit Dropout(const DropoutOptions& options);
  std::string kind() const override { return "dropout"; }
  std::string describe() const override;
  Shape output_shape(const Shape& input) const override { return input; }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::vector<BufferRef> buffers() override;  // "step"

 private:
  DropoutOptions options_;
  std::int64_t step_ = 0;
  std::vector<std::uint8_t> mask_;  // 1 = kept, for backward
  bool saved_training_ = false;
};

}  // namespace bnorm
