// bnorm/model/builtin.hpp: the built-in models, as spec text.
//
// A built-in is a function from a few choices to spec text, not a separate code path: the text
// it returns is what gets built and what a model file stores, so a saved model never depends on
// this file staying the same.
//   mlp-paper    Ioffe & Szegedy 2015, section 4.1: flatten, 3 fully-connected hidden layers of
//                100 sigmoid units, linear(10). The paper's "small random Gaussian values" are
//                Xavier-normal weights under the automatic initialization (sigma 0.048 for the
//                first layer, 0.1 for the hidden ones), small enough not to saturate the sigmoids.
//   vgg-mini     conv3x3(32) x2, maxpool2, conv3x3(64) x2, maxpool2, flatten, linear(128),
//                linear(10), relu after each hidden layer.
//   resnet-mini  stem conv3x3(16), three residual blocks of two conv3x3 (16; 32 stride 2; 64
//                stride 2, with projection shortcuts), gap, linear(10).
// BN goes between each hidden weight layer and its activation (before, as in the paper) or
// after the activation; with bn off the layers keep their biases. Dropout, when p > 0, goes
// before the last linear.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bnorm {

enum class BnPosition : std::uint8_t { before_activation, after_activation };
const char* to_string(BnPosition position);          // "before", "after"
BnPosition parse_bn_position(const std::string& text);  // "before" / "after", else invalid_argument

struct BuiltinOptions {
  bool bn = true;
  BnPosition bn_position = BnPosition::before_activation;
  double dropout = 0.0;  // 0: no dropout layer
};

// "mlp-paper", "vgg-mini", "resnet-mini".
const std::vector<std::string>& builtin_names();
bool is_builtin(std::string_view name);
// Throws std::invalid_argument for an unknown name (listing the known ones) or a dropout
// outside [0, 1).
std::string builtin_spec(std::string_view name, const BuiltinOptions& options = {});

}  // namespace bnorm
