// model_arguments.hpp: the options that choose a network, shared by `train`, `summary` and
// `bench-train`: --model (a built-in name, spec text, or a file holding spec text), --bn /
// --no-bn, --bn-position, --dropout, --bn-eps, --bn-momentum, --layout, --init, --init-sigma.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "bnorm/model/builtin.hpp"
#include "bnorm/model/model.hpp"

namespace bnorm::cli {

struct ModelArguments {
  std::string model = "vgg-mini";
  bool bn = true;
  std::string bn_position = "before";
  double dropout = 0.0;
  double bn_eps = 1e-5;
  std::string bn_momentum = "0.1";  // a number, or "none" for a cumulative average
  std::string layout = "nhwc";
  std::string init = to_string(InitOptions{}.scheme);
  double init_sigma = InitOptions{}.sigma;

  void add_to(CLI::App& app);
  // --model resolved: a built-in name stays a name, an existing file becomes its text.
  std::string model_text() const;
  BuiltinOptions builtin_options() const;
  // layout, bn_eps, bn_momentum, dropout_p, init (seed left at 0).
  ModelOptions model_options() const;
};

Layout parse_layout(const std::string& name);  // "nchw" / "nhwc"

}  // namespace bnorm::cli
