// The built-in models as spec text (bnorm/model/builtin.hpp).
#include "bnorm/model/builtin.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace bnorm {
namespace {

struct Writer {
  const BuiltinOptions& options;
  std::string text;

  void word(const std::string& w) { text += (text.empty() ? "" : " ") + w; }
  // A weight layer, its activation, and bn where the options put it.
  void unit(const std::string& weight, const char* activation) {
    word(weight);
    if (options.bn && options.bn_position == BnPosition::before_activation) word("bn");
    word(activation);
    if (options.bn && options.bn_position == BnPosition::after_activation) word("bn");
  }
  void dropout() {
    if (options.dropout <= 0.0) return;
    char p[32];
    std::snprintf(p, sizeof p, "%g", options.dropout);
    word(std::string("dropout(") + p + ")");
  }
  // Two conv3x3 in a residual block; the second one's activation comes after the sum, so in
  // the "before" position its bn closes the body and in the "after" position it follows the sum.
  void residual_block(int channels, int stride) {
    const std::string c = std::to_string(channels);
    const std::string first = "conv3x3(" + c + (stride > 1 ? ", s=" + std::to_string(stride) : "") + ")";
    const bool before = options.bn && options.bn_position == BnPosition::before_activation;
    const bool after = options.bn && options.bn_position == BnPosition::after_activation;
    std::string body = first + (before ? " bn relu " : after ? " relu bn " : " relu ") + "conv3x3(" + c + ")" +
                       (before ? " bn" : "");
    word("res(" + body + ")");
    word("relu");
    if (after) word("bn");
  }
};

}  // namespace

const char* to_string(BnPosition position) {
  return position == BnPosition::before_activation ? "before" : "after";
}

BnPosition parse_bn_position(const std::string& text) {
  if (text == "before") return BnPosition::before_activation;
  if (text == "after") return BnPosition::after_activation;
  throw std::invalid_argument("bn position must be 'before' or 'after' (the activation), got '" + text + "'");
}

const std::vector<std::string>& builtin_names() {
  static const std::vector<std::string> names = {"mlp-paper", "vgg-mini", "resnet-mini"};
  return names;
}

bool is_builtin(std::string_view name) {
  const auto& names = builtin_names();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string builtin_spec(std::string_view name, const BuiltinOptions& options) {
  if (!(options.dropout >= 0.0 && options.dropout < 1.0))
    throw std::invalid_argument("dropout must be in [0, 1), got " + std::to_string(options.dropout));
  Writer w{options, {}};
  if (name == "mlp-paper") {
    w.word("flatten");
    for (int i = 0; i < 3; ++i) w.unit("linear(100)", "sigmoid");
    w.dropout();
    w.word("linear(10)");
  } else if (name == "vgg-mini") {
    for (int channels : {32, 64}) {
      for (int i = 0; i < 2; ++i) w.unit("conv3x3(" + std::to_string(channels) + ")", "relu");
      w.word("maxpool2");
    }
    w.word("flatten");
    w.unit("linear(128)", "relu");
    w.dropout();
    w.word("linear(10)");
  } else if (name == "resnet-mini") {
    w.unit("conv3x3(16)", "relu");
    w.residual_block(16, 1);
    w.residual_block(32, 2);
    w.residual_block(64, 2);
    w.word("gap");
    w.dropout();
    w.word("linear(10)");
  } else {
    std::string known;
    for (const std::string& n : builtin_names()) known += (known.empty() ? "" : ", ") + n;
    throw std::invalid_argument("unknown built-in model '" + std::string(name) + "'; expected one of " + known);
  }
  return w.text;
}

}  // namespace bnorm
