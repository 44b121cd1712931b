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
  // Throws std::invalid_argument unless 0 <= p < 1.
  explicit Dropout(const DropoutOptions& options);
  std::string kind() const override { return "dropout"; }
  std::string describe() const override;  // "dropout(p=0.5, seed=0)"
  Shape output_shape(const Shape& input) const override { return input; }
  // Training: y = x * mask / (1-p) with the mask of `step`, then step += 1 (also when p = 0).
  // Eval, or p = 0: returns x itself (no copy).
  Tensor forward(const Tensor& x) override;
  // dx = dy * mask / (1-p) after a training forward, dy itself after an identity one.
  Tensor backward(const Tensor& dy) override;
  std::vector<BufferRef> buffers() override;  // "step"

  const DropoutOptions& options() const { return options_; }
  std::int64_t step() const { return step_; }

 private:
  enum class Saved : std::uint8_t { nothing, identity, masked };  // what the last forward was

  DropoutOptions options_;
  std::int64_t step_ = 0;
  std::vector<std::uint8_t> mask_;  // 1 = kept, for backward
  Saved saved_ = Saved::nothing;
  Shape saved_shape_;
  Layout saved_layout_ = Layout::channels_first;
};

}  // namespace bnorm
