// bnorm/io/model_file.hpp: a trained network in one safetensors file, ready for eval/predict.
//
// A model file is everything needed to use a network on new images:
//   tensors   the network's state_dict ("conv1.weight", "bn1.running_mean", ...), plus the
//             input standardization as "input.mean" and "input.stddev" (F32, absent for none);
//   metadata  "bnorm.spec"          the expanded spec text (rebuilt with Model::build),
//             "bnorm.input_shape"   per example, "1,28,28",
//             "bnorm.layout"        "channels_first" or "channels_last",
//             "bnorm.bn_eps", "bnorm.bn_momentum" ("none" for a cumulative average),
//             "bnorm.dropout_p", "bnorm.seed"   the ModelOptions the spec was built with,
//             "bnorm.standardization"  none | global | per-channel | per-pixel,
//             "bnorm.class_names"   a JSON array of strings,
//             and any extra keys the caller adds (the trainer stores its configuration).
// A checkpoint (bnorm/train/checkpoint.hpp) is a model file with more tensors under the
// prefixes "optimizer." and "trainer."; load_model_file reads either.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "bnorm/data/standardize.hpp"
#include "bnorm/io/safetensors.hpp"
#include "bnorm/model/model.hpp"

namespace bnorm {

struct ModelFile {
  Model model;
  Standardizer standardizer;
  std::vector<std::string> class_names;
  Metadata metadata;  // everything in the file's metadata, bnorm's keys included
};

// Prefixes of checkpoint-only tensors, skipped when a checkpoint is read as a model.
inline const std::vector<std::string> checkpoint_only_prefixes = {"optimizer.", "trainer."};

// The tensors and metadata of a model file (the checkpoint writer adds its own to these).
std::vector<NamedTensor> model_file_tensors(Model& model, const Standardizer& standardizer);
Metadata model_file_metadata(const Model& model, const Standardizer& standardizer,
                             const std::vector<std::string>& class_names);

// Written atomically (temporary file, fsync, rename).
void save_model_file(const std::filesystem::path& path, Model& model, const Standardizer& standardizer,
                     const std::vector<std::string>& class_names, const Metadata& extra = {});

// Rebuilds the network from the stored spec and options, then loads every tensor (strictly:
// names, dtypes and shapes must match). Errors name the file. The model is in eval mode.
ModelFile load_model_file(const std::filesystem::path& path);
ModelFile model_file_from(const SafetensorsFile& file);

}  // namespace bnorm
