// bnorm/model/build.hpp: a parsed spec + a per-example input shape -> a Sequential of layers.
//
// Sizes are inferred from the input: conv and bn take their channels from dimension 0 of the
// per-example shape (C, H, W), linear its features from a rank-1 input. A rank-4 activation is
// never flattened silently: a linear that gets (C, H, W) is an error that asks for `flatten`.
// `bn` becomes BatchNorm1d for (features) or (C, L) and BatchNorm2d for (C, H, W); `bn1d` and
// `bn2d` insist on one of them.
//
// Bias rule: a conv or linear immediately followed by bn (in the same sequence) gets no bias,
// since BN's beta replaces it (Ioffe & Szegedy 2015, section 3.2), unless the spec says
// bias=true; the names of such layers are recorded so that the summary can show it.
//
// Residual blocks: with no `|` part, the shortcut is the identity when the body keeps the
// shape, else a projection: conv1x1(C_out, s) for a (C, H, W) input (linear(F_out) for a
// (features) input), followed by bn when the body contains a bn. The stride s is H_in / H_out
// and must reproduce the body's output shape exactly, else the spec is rejected.
//
// Layers are created with zero parameters (BN: gamma 1, beta 0); bnorm/model/model.hpp
// applies initialization. Every error is a SpecError at the position of the offending word.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bnorm/layers/activation.hpp"
#include "bnorm/layers/sequential.hpp"
#include "bnorm/model/spec.hpp"
#include "bnorm/tensor/tensor.hpp"

namespace bnorm {

struct BuildOptions {
  Shape input_shape;  // per example, without the batch: (C, H, W) or (features)
  Layout layout = Layout::channels_first;
  // Defaults for words that do not set them (CLI --bn-eps, --bn-momentum, --dropout).
  double bn_eps = 1e-5;
  std::optional<double> bn_momentum = 0.1;  // nullopt: cumulative average
  double dropout_p = 0.5;
  // Dropout masks are counter_hash(seed of the layer, step, index); each Dropout layer's seed is
  // derived from this one and its index in the network.
  std::uint64_t seed = 0;
};

// What the builder knows about a layer with weights that the layers themselves do not keep.
struct LayerNote {
  std::string name;            // full path: "conv1", "residual1.body.conv2", "residual1.shortcut.conv1"
  SpecPosition position;       // the word that made it (a projection: the `res` word)
  bool bias_dropped = false;   // bias left out because bn follows
  bool projection = false;     // an automatic residual projection
  // The first activation after the layer (looking past bn, dropout, pooling, flatten and the
  // end of a residual body): weight initialization chooses its gain from it.
  std::optional<Activation> activation;
};

struct BuiltNetwork {
  Sequential net;
  std::vector<LayerNote> notes;  // one per conv / linear, in network order
  Shape output_shape;            // per example
};

// Throws SpecError (shape problems, at the word's position).
BuiltNetwork build_network(const SpecAst& spec, const BuildOptions& options);

}  // namespace bnorm
