// bnorm/model/spec.hpp: the textual model spec, parsed into a syntax tree of layer words.
//
// A spec is a sequence of layer words, each with optional arguments, e.g.
//   conv3x3(32) bn relu maxpool2 flatten linear(128) bn(eps=1e-3) relu dropout(0.5) linear(10)
//   res(conv3x3(64, s=2) bn relu conv3x3(64) bn) relu gap linear(10)
// The full grammar, every word and its arguments, is in docs/model-spec.md.
//
// parse_spec checks everything that does not depend on the input: syntax, known words, known
// keywords, argument types and ranges (sizes >= 1, 0 <= dropout p < 1, ...). What depends on the
// input shape (channels, ranks, a linear after a conv without flatten, a kernel larger than
// the image) is checked when the network is built (bnorm/model/build.hpp). Both report a
// SpecError that names the position (line and column, 1-based) and shows the line with a caret.
//
// Not here: building layers, initialization.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bnorm {

struct SpecPosition {
  int line = 1;    // 1-based
  int column = 1;  // 1-based, in bytes
};

// what(): "spec:1:14: unknown layer 'cnv3x3'; expected one of ...\n  <the line>\n  <caret>".
class SpecError : public std::invalid_argument {
 public:
  // `text` is the whole spec (to show the offending line); `source` names it ("spec", a file).
  SpecError(std::string_view source, std::string_view text, SpecPosition position,
            const std::string& message);
  SpecPosition position() const { return position_; }
  // The message alone, without the location prefix and the caret lines.
  const std::string& message() const { return message_; }

 private:
  SpecPosition position_;
  std::string message_;
};

enum class SpecKind : std::uint8_t {
  conv, linear, bn, maxpool, avgpool, gap, relu, sigmoid, tanh, dropout, flatten, residual,
};
const char* to_string(SpecKind kind);

// Which BatchNorm a `bn` word asks for: any (chosen by the input rank) or a specific one.
enum class SpecBnRank : std::uint8_t { any, bn1d, bn2d };

// One layer word, its arguments resolved and checked. Fields that a kind does not use keep
// their defaults; optional fields that are empty take the build options' defaults.
struct LayerSpec {
  SpecKind kind = SpecKind::relu;
  std::string word;           // as written: "conv3x3", "maxpool2", "bn"
  SpecPosition position;      // of the word
  // conv, linear: output channels / features.
  std::int64_t out = 0;
  // conv and pools. For pools stride 0 means "equal to the kernel".
  std::int64_t kernel = 0, stride = 1, padding = 0, dilation = 1, groups = 1;
  // conv, linear: nullopt = automatic (dropped when bn follows, else kept).
  std::optional<bool> bias;
  // bn. momentum: nullopt = the build default; a nullopt inside = cumulative average ("none").
  SpecBnRank bn_rank = SpecBnRank::any;
  std::optional<double> eps;
  std::optional<std::optional<double>> momentum;
  bool affine = true;
  // dropout: nullopt = the build default.
  std::optional<double> p;
  // residual: y = body(x) + shortcut(x). has_shortcut: a `|` part was written (possibly empty,
  // meaning identity); otherwise the shortcut is the identity, or a projection when the body
  // changes the shape.
  std::vector<LayerSpec> body, shortcut;
  bool has_shortcut = false;
};

struct SpecAst {
  std::string text;    // the spec as given
  std::string source;  // "spec" or a file name, for error messages
  std::vector<LayerSpec> layers;
};

// Throws SpecError.
SpecAst parse_spec(std::string_view text, std::string_view source = "spec");

// The words parse_spec knows, for messages and documentation ("conv", "conv3x3", ...).
const std::vector<std::string>& spec_words();

}  // namespace bnorm
