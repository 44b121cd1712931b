#include "bnorm/io/model_file.hpp"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cstdio>
#include <stdexcept>

#include "bnorm/io/state_dict.hpp"
#include "bnorm/util/decimal.hpp"

namespace bnorm {
namespace {

constexpr const char* input_mean_name = "input.mean";
constexpr const char* input_stddev_name = "input.stddev";

std::string join_shape(const Shape& shape) {
  std::string text;
  for (int i = 0; i < shape.rank(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
  return text;
}

// Reads one metadata value; every failure names the file and the key.
class MetadataReader {
 public:
  explicit MetadataReader(const SafetensorsFile& file) : file_(file) {}

  const std::string& text(const std::string& key) const { return file_.metadata_at(key); }

  double number(const std::string& key) const {
    const std::optional<double> value = parse_decimal(text(key));
    if (!value) fail(key, "a number", text(key));
    return *value;
  }

  Shape shape(const std::string& key) const {
    const std::string& value = text(key);
    std::vector<std::int64_t> dims;
    const char* p = value.data();
    const char* end = p + value.size();
    while (p < end) {
      std::int64_t d = 0;
      auto [next, error] = std::from_chars(p, end, d);
      if (error != std::errc() || d < 1) fail(key, "positive integers separated by commas", value);
      dims.push_back(d);
      p = next;
      if (p < end && *p++ != ',') fail(key, "positive integers separated by commas", value);
    }
    if (dims.empty() || dims.size() > static_cast<std::size_t>(max_rank - 1))
      fail(key, "1 to 4 dimensions", value);
    return Shape(dims);
  }

  [[noreturn]] void fail(const std::string& key, const char* expected, const std::string& found) const {
    throw std::runtime_error(file_.source + ": metadata " + key + " must be " + expected + ", found '" +
                             found + "'");
  }

 private:
  const SafetensorsFile& file_;
};

}  // namespace

std::vector<NamedTensor> model_file_tensors(Model& model, const Standardizer& standardizer) {
  std::vector<NamedTensor> tensors = state_dict(model.net);
  if (standardizer.mode != Standardization::none) {
    const auto count = static_cast<std::int64_t>(standardizer.mean.size());
    tensors.push_back(named_values<float>(input_mean_name, {count}, standardizer.mean));
    tensors.push_back(named_values<float>(input_stddev_name, {count}, standardizer.stddev));
  }
  return tensors;
}

Metadata model_file_metadata(const Model& model, const Standardizer& standardizer,
                             const std::vector<std::string>& class_names) {
  const ModelOptions& options = model.options;
  return {
      {spec_metadata_key, model.spec},
      {"bnorm.input_shape", join_shape(model.input_shape)},
      {"bnorm.layout", to_string(options.layout)},
      {"bnorm.bn_eps", exact_decimal(options.bn_eps)},
      {"bnorm.bn_momentum", options.bn_momentum ? exact_decimal(*options.bn_momentum) : "none"},
      {"bnorm.dropout_p", exact_decimal(options.dropout_p)},
      {"bnorm.seed", std::to_string(options.seed)},
      {"bnorm.standardization", to_string(standardizer.mode)},
      {"bnorm.class_names", nlohmann::json(class_names).dump()},
  };
}

void save_model_file(const std::filesystem::path& path, Model& model, const Standardizer& standardizer,
                     const std::vector<std::string>& class_names, const Metadata& extra) {
  Metadata metadata = model_file_metadata(model, standardizer, class_names);
  metadata.insert(extra.begin(), extra.end());
  const std::vector<NamedTensor> tensors = model_file_tensors(model, standardizer);
  save_safetensors(path, tensors, metadata);
}

ModelFile model_file_from(const SafetensorsFile& file) {
  const MetadataReader read(file);
  ModelOptions options;
  const std::string& layout = read.text("bnorm.layout");
  if (layout == to_string(Layout::channels_first)) options.layout = Layout::channels_first;
  else if (layout == to_string(Layout::channels_last)) options.layout = Layout::channels_last;
  else read.fail("bnorm.layout", "channels_first or channels_last", layout);
  options.bn_eps = read.number("bnorm.bn_eps");
  if (read.text("bnorm.bn_momentum") == "none") options.bn_momentum.reset();
  else options.bn_momentum = read.number("bnorm.bn_momentum");
  options.dropout_p = read.number("bnorm.dropout_p");
  try {
    options.seed = std::stoull(read.text("bnorm.seed"));
  } catch (const std::exception&) {
    read.fail("bnorm.seed", "an unsigned integer", read.text("bnorm.seed"));
  }

  ModelFile result{.model = Model::build(read.text(spec_metadata_key), read.shape("bnorm.input_shape"),
                                         options, file.source + " (bnorm.spec)")};
  std::vector<std::string> ignored = checkpoint_only_prefixes;
  ignored.push_back("input.");
  load_state_dict(result.model.net, file, {.ignored_prefixes = ignored});
  result.model.net.eval();

  Standardizer& standardizer = result.standardizer;
  try {
    standardizer.mode = parse_standardization(read.text("bnorm.standardization"));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(file.source + ": metadata bnorm.standardization: " + e.what());
  }
  if (standardizer.mode != Standardization::none) {
    const std::vector<std::int64_t> dims = result.model.input_shape.dims();
    standardizer.example_shape = dims;
    const NamedTensor& mean = file.at(input_mean_name);
    const std::vector<std::int64_t> shape = {mean.numel()};
    standardizer.mean = values_of<float>(mean, shape);
    standardizer.stddev = values_of<float>(file.at(input_stddev_name), shape);
    try {
      standardizer.validate();
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(file.source + ": input standardization: " + e.what());
    }
  }
  try {
    const auto names = nlohmann::json::parse(read.text("bnorm.class_names"));
    result.class_names = names.get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    read.fail("bnorm.class_names", "a JSON array of strings", read.text("bnorm.class_names"));
  }
  const Shape& out = result.model.output_shape;
  if (out.rank() != 1 || static_cast<std::size_t>(out[0]) != result.class_names.size())
    throw std::runtime_error(file.source + ": the network outputs " + out.to_string() + " per example but " +
                             std::to_string(result.class_names.size()) + " class names are stored");
  result.metadata = file.metadata;
  return result;
}

ModelFile load_model_file(const std::filesystem::path& path) {
  return model_file_from(load_safetensors(path));
}

}  // namespace bnorm
