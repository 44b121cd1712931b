// bnorm/train/trainer.hpp: the training loop behind `bnorm train`, usable from C++.
//
// train(config, events) does, in order:
//   1. loads the data folder (Fashion-MNIST by default), holds out a seeded validation split,
//      fits the input standardization on the remaining training images only, applies it;
//   2. builds the model (built-in name or spec text) with Model::build and the seed;
//   3. for each step: next mini-batch (seeded shuffle), forward, softmax cross-entropy,
//      backward, learning rate from the schedule, optimizer step;
//   4. writes to config.out_dir:
//        steps.csv        step, epoch, lr, loss, accuracy, images_per_second (every step)
//        epochs.csv       epoch, train and validation loss/accuracy, seconds, images/s
//        checkpoint.safetensors   every checkpoint_every steps, at each epoch end and on stop
//        model.safetensors        the final model (bnorm/io/model_file.hpp)
//        config.json      the configuration.
// Everything is written atomically, so a crash loses at most the steps since the last
// checkpoint; resume(out_dir) continues the same run: N steps in one go and k steps + resume
// + N-k steps give bitwise the same model at the same thread count.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "bnorm/data/standardize.hpp"
#include "bnorm/model/builtin.hpp"
#include "bnorm/model/model.hpp"
#include "bnorm/train/evaluate.hpp"
#include "bnorm/train/optimizer.hpp"
#include "bnorm/train/schedule.hpp"

namespace bnorm {

// Every option of `bnorm train`, with its default. Serialized into checkpoints (to_json).
struct TrainConfig {
  // Model: a built-in name (with the builtin choices) or spec text.
  std::string model = "vgg-mini";
  BuiltinOptions builtin = {};
  ModelOptions model_options = {.layout = Layout::channels_last};
  // Data.
  std::string data_dir = default_dataset_dir;
  std::int64_t validation_examples = 0;  // held out of the training set
  Standardization standardization = Standardization::per_pixel;
  // Length: epochs, unless steps > 0.
  std::int64_t epochs = 3;
  std::int64_t steps = 0;
  std::int64_t batch_size = 128;
  // Optimization.
  std::string optimizer = "sgd";
  OptimizerSettings optimizer_settings = {.lr = 0.1, .momentum = 0.9, .nesterov = true,
                                          .weight_decay = 5e-4};
  std::string schedule = "cosine";
  ScheduleOptions schedule_options = {.warmup_steps = 200};  // total_steps is filled in
  std::uint64_t seed = 0;  // data order, validation split, model initialization, dropout
  // Output.
  std::filesystem::path out_dir = "run";
  std::int64_t checkpoint_every = 0;  // steps; 0: at epoch ends only

  std::string to_json() const;
  static TrainConfig from_json(const std::string& text);  // throws std::invalid_argument
};

struct StepReport {
  std::int64_t step = 0;  // 1-based, over the whole run
  std::int64_t epoch = 0;  // 1-based
  std::int64_t step_in_epoch = 0, steps_in_epoch = 0;
  double lr = 0.0;
  double loss = 0.0, accuracy = 0.0;            // this batch
  double epoch_loss = 0.0, epoch_accuracy = 0.0;  // running means over the epoch so far
  double images_per_second = 0.0;               // over the epoch so far
};

struct EpochReport {
  std::int64_t epoch = 0, epochs = 0;
  double train_loss = 0.0, train_accuracy = 0.0;
  std::optional<EvalResult> validation;
  double seconds = 0.0, images_per_second = 0.0;
};

// Hooks for a user interface; all optional.
struct TrainEvents {
  std::function<void(const std::string&)> message;  // one-line notes ("resuming at step 120")
  std::function<void(std::int64_t epoch, std::int64_t epochs, std::int64_t steps)> epoch_started;
  std::function<void(const StepReport&)> step_done;
  std::function<void(const EpochReport&)> epoch_done;
  // Polled between steps: true stops the run after writing a checkpoint.
  std::function<bool()> stop_requested;
};

struct TrainResult {
  bool stopped = false;  // stop_requested ended it early
  std::int64_t steps = 0;
  std::filesystem::path model_path;       // written only when the run completed
  std::filesystem::path checkpoint_path;  // the last checkpoint
  std::optional<EpochReport> last_epoch;
};

TrainResult train(const TrainConfig& config, const TrainEvents& events = {});
// Continues the run whose checkpoint is `checkpoint` (out_dir/checkpoint.safetensors) with the
// configuration stored in it, writing to the checkpoint's folder. Rows of steps.csv and
// epochs.csv after the checkpoint (written before a crash) are dropped and written again.
TrainResult resume(const std::filesystem::path& checkpoint, const TrainEvents& events = {});

}  // namespace bnorm
