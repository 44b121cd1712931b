#include "bnorm/train/checkpoint.hpp"

#include <cstdio>
#include <stdexcept>
#include <string>

#include "bnorm/io/named_tensor.hpp"
#include "bnorm/util/decimal.hpp"

namespace bnorm {
namespace {

constexpr const char* optimizer_prefix = "optimizer.";
constexpr const char* config_key = "bnorm.train_config";

double parse_exact(const SafetensorsFile& file, const std::string& key) {
  const std::string& text = file.metadata_at(key);
  if (const std::optional<double> value = parse_decimal(text)) return *value;
  throw std::runtime_error(file.source + ": metadata " + key + " must be a number, found '" + text + "'");
}

}  // namespace

void save_checkpoint(const std::filesystem::path& path, Model& model, const Standardizer& standardizer,
                     const std::vector<std::string>& class_names, const Optimizer& optimizer,
                     const CheckpointState& state) {
  std::vector<NamedTensor> tensors = model_file_tensors(model, standardizer);
  const OptimizerState optimizer_state = optimizer.state();
  tensors.push_back(named_scalar_i64(std::string(optimizer_prefix) + "step", optimizer_state.step));
  for (const OptimizerStateEntry& entry : optimizer_state.tensors)
    tensors.push_back(named_tensor(optimizer_prefix + entry.name, entry.tensor));
  tensors.push_back(named_scalar_i64("trainer.step", state.step));
  tensors.push_back(named_scalar_i64("trainer.loader.epoch", state.loader.epoch));
  tensors.push_back(named_scalar_i64("trainer.loader.position", state.loader.position));
  tensors.push_back(named_values<std::uint64_t>("trainer.loader.rng", {4}, state.loader.rng));

  Metadata metadata = model_file_metadata(model, standardizer, class_names);
  metadata[config_key] = state.train_config_json;
  metadata["trainer.epoch_loss_sum"] = exact_decimal(state.epoch.loss_sum);
  metadata["trainer.epoch_correct"] = std::to_string(state.epoch.correct);
  metadata["trainer.epoch_examples"] = std::to_string(state.epoch.examples);
  metadata["trainer.epoch_seconds"] = exact_decimal(state.epoch.seconds);
  save_safetensors(path, tensors, metadata);
}

LoadedCheckpoint load_checkpoint(const std::filesystem::path& path) {
  const SafetensorsFile file = load_safetensors(path);
  if (!file.find("trainer.step"))
    throw std::runtime_error(file.source + ": not a checkpoint (a model file?): it has no trainer.step");
  LoadedCheckpoint loaded{.model_file = model_file_from(file)};

  const std::string prefix = optimizer_prefix;
  for (const NamedTensor& stored : file.tensors) {
    if (stored.name.rfind(prefix, 0) != 0) continue;
    const std::string name = stored.name.substr(prefix.size());
    if (name == "step") loaded.optimizer.step = scalar_i64_of(stored);
    else loaded.optimizer.tensors.push_back({.name = name, .tensor = tensor_of(stored)});
  }
  CheckpointState& state = loaded.state;
  state.step = scalar_i64_of(file.at("trainer.step"));
  state.loader.epoch = scalar_i64_of(file.at("trainer.loader.epoch"));
  state.loader.position = scalar_i64_of(file.at("trainer.loader.position"));
  const std::vector<std::uint64_t> rng = values_of<std::uint64_t>(file.at("trainer.loader.rng"), {4});
  std::copy(rng.begin(), rng.end(), state.loader.rng.begin());
  state.epoch.loss_sum = parse_exact(file, "trainer.epoch_loss_sum");
  state.epoch.correct = static_cast<std::int64_t>(parse_exact(file, "trainer.epoch_correct"));
  state.epoch.examples = static_cast<std::int64_t>(parse_exact(file, "trainer.epoch_examples"));
  state.epoch.seconds = parse_exact(file, "trainer.epoch_seconds");
  state.train_config_json = file.metadata_at(config_key);
  return loaded;
}

}  // namespace bnorm
