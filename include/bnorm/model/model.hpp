// bnorm/model/model.hpp: a network together with what it takes to rebuild it.
//
// A Model is the spec text (always the expanded text: a built-in name is turned into its spec
// before building), the per-example input shape, the options it was built with, the layers,
// and the builder's notes. Rebuilding from (spec, input_shape, options) gives the same layers
// with the same initial values on every machine; a model file needs to store only these and
// the parameter and buffer values.
//
//   bnorm::Model m = bnorm::Model::build("conv3x3(32) bn relu flatten linear(10)", {1, 28, 28},
//                                        {.bn_momentum = 0.01, .seed = 7});
//   bnorm::Tensor logits = m.net.forward(batch);  // (N, 1, 28, 28) -> (N, 10)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bnorm/layers/sequential.hpp"
#include "bnorm/model/build.hpp"
#include "bnorm/model/builtin.hpp"
#include "bnorm/model/init.hpp"
#include "bnorm/model/spec.hpp"
#include "bnorm/model/summary.hpp"

namespace bnorm {

struct ModelOptions {
  Layout layout = Layout::channels_first;
  double bn_eps = 1e-5;                     // for `bn` words without eps=
  std::optional<double> bn_momentum = 0.1;  // for `bn` words without momentum=; nullopt: cumulative
  double dropout_p = 0.5;                   // for `dropout` words without p
  InitOptions init = {};
  std::uint64_t seed = 0;                   // initialization and dropout masks
};

struct Model {
  std::string spec;   // the spec text that was built
  Shape input_shape;  // per example: (C, H, W) or (features)
  ModelOptions options;
  Sequential net;
  std::vector<LayerNote> notes;  // one per conv / linear: bias dropped, following activation
  Shape output_shape;            // per example, e.g. (10)

  // Parses, builds and initializes (Rng(options.seed)). `source` names the spec in errors
  // ("spec", or a file name). Throws SpecError for spec mistakes, std::invalid_argument for a
  // bad input shape.
  static Model build(std::string_view spec, const Shape& input_shape, const ModelOptions& options = {},
                     std::string_view source = "spec");

  Summary summary() { return summarize(net, input_shape, notes); }
};

// A built-in name becomes its spec text (with `builtin`'s choices); anything else is returned
// unchanged, to be parsed as a spec.
std::string expand_spec(std::string_view name_or_spec, const BuiltinOptions& builtin = {});

// The contents of a spec file; throws std::runtime_error naming the path when it cannot be read.
std::string read_spec_file(const std::string& path);

}  // namespace bnorm
