// bnorm/train/checkpoint.hpp: the state of a training run in one safetensors file.
//
// A checkpoint is a model file (bnorm/io/model_file.hpp) plus
//   "optimizer.step"                I64   updates applied
//   "optimizer.<param>.<slot>"      F32   momentum buffers, Adam moments
//   "trainer.step"                  I64   steps done
//   "trainer.loader.epoch"          I64   the data loader's position (LoaderState)
//   "trainer.loader.position"       I64
//   "trainer.loader.rng"            U64 (4)  the shuffling generator at the epoch's start
// and the metadata key "bnorm.train_config" (TrainConfig::to_json) plus the running sums of
// the current epoch ("trainer.epoch_*", exact decimal text), so that a resumed run reports the
// same epoch metrics. `bnorm eval` and `bnorm predict` accept a checkpoint as a model.
#pragma once

#include <filesystem>
#include <memory>

#include "bnorm/data/loader.hpp"
#include "bnorm/io/model_file.hpp"
#include "bnorm/train/optimizer.hpp"

namespace bnorm {

// Running sums over the steps of the current epoch.
struct EpochTotals {
  double loss_sum = 0.0;       // sum over examples of the loss
  std::int64_t correct = 0;
  std::int64_t examples = 0;
  double seconds = 0.0;        // time spent in steps
};

struct CheckpointState {
  std::int64_t step = 0;
  LoaderState loader;
  EpochTotals epoch;
  std::string train_config_json;
};

void save_checkpoint(const std::filesystem::path& path, Model& model, const Standardizer& standardizer,
                     const std::vector<std::string>& class_names, const Optimizer& optimizer,
                     const CheckpointState& state);

struct LoadedCheckpoint {
  ModelFile model_file;
  OptimizerState optimizer;
  CheckpointState state;
};
LoadedCheckpoint load_checkpoint(const std::filesystem::path& path);

}  // namespace bnorm
