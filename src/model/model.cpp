// Model: parse + build + initialize (bnorm/model/model.hpp).
#include "bnorm/model/model.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace bnorm {

Model Model::build(std::string_view spec, const Shape& input_shape, const ModelOptions& options,
                   std::string_view source) {
  const SpecAst ast = parse_spec(spec, source);
  BuiltNetwork built = build_network(ast, {.input_shape = input_shape,
                                           .layout = options.layout,
                                           .bn_eps = options.bn_eps,
                                           .bn_momentum = options.bn_momentum,
                                           .dropout_p = options.dropout_p,
                                           .seed = options.seed});
  Model model{.spec = std::string(spec),
              .input_shape = input_shape,
              .options = options,
              .net = std::move(built.net),
              .notes = std::move(built.notes),
              .output_shape = built.output_shape};
  Rng rng(options.seed);
  initialize(model.net, model.notes, options.init, rng);
  return model;
}

std::string expand_spec(std::string_view name_or_spec, const BuiltinOptions& builtin) {
  if (is_builtin(name_or_spec)) return builtin_spec(name_or_spec, builtin);
  return std::string(name_or_spec);
}

std::string read_spec_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read the spec file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw std::runtime_error("error while reading the spec file '" + path + "'");
  return text.str();
}

}  // namespace bnorm
