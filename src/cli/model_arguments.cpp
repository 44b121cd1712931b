#include "cli/model_arguments.hpp"

#include <filesystem>
#include <stdexcept>

#include "bnorm/model/init.hpp"
#include "bnorm/util/decimal.hpp"
#include "cli/commands.hpp"

namespace bnorm::cli {

void ModelArguments::add_to(CLI::App& app) {
  std::string names;
  for (const std::string& name : builtin_names()) names += (names.empty() ? "" : ", ") + name;
  app.add_option("--model", model, "A built-in model (" + names + "), spec text, or a file holding spec text (docs/model-spec.md)")
      ->capture_default_str();
  app.add_flag("--bn,!--no-bn", bn, "Built-in models: with or without batch normalization")->capture_default_str();
  app.add_option("--bn-position", bn_position, "Built-in models: BN before or after the activation")
      ->check(CLI::IsMember({"before", "after"}))->capture_default_str();
  app.add_option("--dropout", dropout, "Built-in models: dropout before the last linear layer (0 = none); also the default p of `dropout` in specs")
      ->check(CLI::Range(0.0, 0.999))->capture_default_str();
  app.add_option("--bn-eps", bn_eps, "eps of every bn layer that does not set its own")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--bn-momentum", bn_momentum, "Running-statistics momentum of every bn layer that does not set its own, in [0, 1], or none for a cumulative average")
      ->capture_default_str();
  app.add_option("--init", init, "Weight initialization: auto (Kaiming before relu, Xavier otherwise), kaiming-normal, kaiming-uniform, xavier-normal, xavier-uniform, gaussian")
      ->capture_default_str();
  app.add_option("--init-sigma", init_sigma, "Standard deviation of --init gaussian")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--layout", layout, "Memory layout of activations")->check(CLI::IsMember({"nchw", "nhwc"}))->capture_default_str();
}

std::string ModelArguments::model_text() const {
  if (is_builtin(model)) return model;
  std::error_code error;
  if (model.find('(') == std::string::npos && std::filesystem::is_regular_file(model, error))
    return read_spec_file(model);
  return model;
}

BuiltinOptions ModelArguments::builtin_options() const {
  return {.bn = bn, .bn_position = parse_bn_position(bn_position), .dropout = dropout};
}

ModelOptions ModelArguments::model_options() const {
  ModelOptions options{.layout = parse_layout(layout), .bn_eps = bn_eps};
  if (bn_momentum == "none") {
    options.bn_momentum.reset();
  } else {
    const std::optional<double> value = parse_decimal(bn_momentum);
    if (!value || !(*value >= 0 && *value <= 1))
      throw std::invalid_argument("--bn-momentum must be a number in [0, 1] or none, got '" + bn_momentum + "'");
    options.bn_momentum = *value;
  }
  if (dropout > 0) options.dropout_p = dropout;
  options.init.scheme = parse_init_scheme(init);
  options.init.sigma = init_sigma;
  return options;
}

Layout parse_layout(const std::string& name) {
  if (name == "nchw") return Layout::channels_first;
  if (name == "nhwc") return Layout::channels_last;
  throw std::invalid_argument("layout must be nchw or nhwc, got '" + name + "'");
}

}  // namespace bnorm::cli
