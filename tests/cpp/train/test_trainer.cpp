// The training loop: bitwise resume, stop and checkpoint, CSV logs, configuration round trip,
// and the errors a user can run into. Runs on a tiny generated IDX folder (8x8 images).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "bnorm/io/model_file.hpp"
#include "bnorm/io/safetensors.hpp"
#include "bnorm/io/state_dict.hpp"
#include "bnorm/train/checkpoint.hpp"
#include "bnorm/train/trainer.hpp"
#include "data/data_test_support.hpp"

namespace bnorm {
namespace {

using testing::TempDir;

TrainConfig tiny_config(const TempDir& dir, const std::string& out, const std::string& optimizer = "sgd") {
  testing::write_idx_folder(dir.file("data"), 96, 20, 8, 8, /*gzip=*/true, /*classes=*/3);
  TrainConfig config;
  config.model = "conv3x3(4) bn relu maxpool2 flatten dropout(0.25) linear(8) bn relu linear(10)";
  config.data_dir = dir.file("data");
  config.validation_examples = 16;  // 80 left: 5 steps of 16 per epoch
  config.steps = 12;
  config.batch_size = 16;
  config.optimizer = optimizer;
  config.optimizer_settings = {.lr = optimizer == "sgd" ? 0.05 : 0.01, .momentum = optimizer == "sgd" ? std::optional(0.9) : std::nullopt,
                               .weight_decay = 1e-3};
  config.schedule_options = {.warmup_steps = 3};
  config.seed = 11;
  config.out_dir = dir.file(out);
  return config;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The loss column of steps.csv, one entry per step.
std::vector<std::string> losses_of(const std::filesystem::path& steps_csv) {
  std::vector<std::string> losses;
  std::istringstream lines(read_text(steps_csv));
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line)) {
    std::vector<std::string> fields;
    std::stringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) fields.push_back(cell);
    losses.push_back(fields.at(3));
  }
  return losses;
}

void expect_same_tensors(const std::filesystem::path& a, const std::filesystem::path& b) {
  const SafetensorsFile fa = load_safetensors(a), fb = load_safetensors(b);
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  for (std::size_t i = 0; i < fa.tensors.size(); ++i) {
    EXPECT_EQ(fa.tensors[i].name, fb.tensors[i].name);
    EXPECT_TRUE(fa.tensors[i].bytes == fb.tensors[i].bytes) << fa.tensors[i].name << " differs";
  }
}

class ResumeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ResumeTest, StopAndResumeIsBitwiseTheStraightRun) {
  TempDir dir("trainer");
  const TrainResult straight = train(tiny_config(dir, "straight", GetParam()));
  ASSERT_FALSE(straight.stopped);
  EXPECT_EQ(straight.steps, 12);

  int steps_seen = 0;
  TrainEvents stop_after_7{.step_done = [&](const StepReport&) { ++steps_seen; },
                           .stop_requested = [&] { return steps_seen == 7; }};
  const TrainResult first = train(tiny_config(dir, "resumed", GetParam()), stop_after_7);
  ASSERT_TRUE(first.stopped);
  EXPECT_EQ(first.steps, 7);
  EXPECT_FALSE(std::filesystem::exists(dir.file("resumed/model.safetensors")));
  // A crash after the checkpoint left more log rows: resume must drop them.
  std::ofstream(dir.file("resumed/steps.csv"), std::ios::app) << "8,2,0.1,9.99,0.5,100\n9,2,0.1,9.9";

  const TrainResult second = resume(first.checkpoint_path);
  ASSERT_FALSE(second.stopped);
  EXPECT_EQ(second.steps, 12);
  expect_same_tensors(dir.file("straight/model.safetensors"), dir.file("resumed/model.safetensors"));
  EXPECT_EQ(losses_of(dir.file("straight/steps.csv")), losses_of(dir.file("resumed/steps.csv")));
  EXPECT_EQ(read_text(dir.file("straight/epochs.csv")).size() > 0, true);
  // Epoch rows: same epochs, same training loss (the resumed epoch kept its running sums).
  auto first_columns = [](const std::string& text) {
    std::string kept;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) kept += line.substr(0, line.find(',', line.find(',') + 1)) + "\n";
    return kept;
  };
  EXPECT_EQ(first_columns(read_text(dir.file("straight/epochs.csv"))),
            first_columns(read_text(dir.file("resumed/epochs.csv"))));
}

INSTANTIATE_TEST_SUITE_P(Optimizers, ResumeTest, ::testing::Values("sgd", "adamw"));

TEST(Trainer, ModelFileAndCheckpointLoadForEvaluation) {
  TempDir dir("trainer");
  const TrainResult result = train(tiny_config(dir, "run"));
  for (const auto& path : {result.model_path, result.checkpoint_path}) {
    ModelFile file = load_model_file(path);
    EXPECT_EQ(file.model.input_shape, Shape({1, 8, 8}));
    EXPECT_EQ(file.class_names.size(), 10u);
    EXPECT_EQ(file.standardizer.mode, Standardization::per_pixel);
    Dataset test = load_dataset_folder(dir.file("data")).test;
    file.standardizer.apply(test);
    const EvalResult eval = evaluate(file.model.net, test, {.batch_size = 7, .layout = file.model.options.layout});
    EXPECT_EQ(eval.examples, 20);
    EXPECT_TRUE(std::isfinite(eval.loss));
  }
}

TEST(Trainer, BatchStatisticsEvaluationLeavesRunningStatisticsAlone) {
  TempDir dir("trainer");
  const TrainResult result = train(tiny_config(dir, "run"));
  ModelFile file = load_model_file(result.model_path);
  const std::vector<NamedTensor> before = state_dict(file.model.net);
  Dataset test = load_dataset_folder(dir.file("data")).test;
  file.standardizer.apply(test);
  const EvalResult running = evaluate(file.model.net, test, {.batch_size = 10, .layout = file.model.options.layout});
  const EvalResult batch = evaluate(file.model.net, test,
                                    {.batch_size = 10, .bn_statistics = BnStatistics::batch, .layout = file.model.options.layout});
  EXPECT_NE(running.loss, batch.loss);
  const std::vector<NamedTensor> after = state_dict(file.model.net);
  ASSERT_EQ(before.size(), after.size());
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(before[i].bytes == after[i].bytes) << before[i].name;
  EXPECT_FALSE(file.model.net.is_training());
}

TEST(Trainer, ConfigurationRoundTripsThroughJson) {
  TrainConfig config;
  config.model = "linear(10)";
  config.builtin.bn_position = BnPosition::after_activation;
  config.model_options.bn_momentum.reset();
  config.optimizer = "adamw";
  config.optimizer_settings = {.lr = 0.003, .beta2 = 0.99};
  config.seed = 123456789012345ull;
  const TrainConfig back = TrainConfig::from_json(config.to_json());
  EXPECT_EQ(back.to_json(), config.to_json());
  EXPECT_FALSE(back.model_options.bn_momentum.has_value());
  EXPECT_EQ(back.seed, 123456789012345ull);
  EXPECT_THROW(TrainConfig::from_json("{\"model\": 3}"), std::invalid_argument);
}

TEST(Trainer, RejectsABatchOfOneWithAClearMessage) {
  TempDir dir("trainer");
  TrainConfig config = tiny_config(dir, "run");
  config.batch_size = 1;
  try {
    train(config);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("batch"), std::string::npos) << e.what();
  }
}

TEST(Trainer, RejectsAModelWhoseOutputDoesNotMatchTheClasses) {
  TempDir dir("trainer");
  TrainConfig config = tiny_config(dir, "run");
  config.model = "flatten linear(7)";
  try {
    train(config);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("linear(10)"), std::string::npos) << e.what();
  }
}

TEST(Trainer, CheckpointOfAnotherModelIsRejectedByName) {
  TempDir dir("trainer");
  const TrainResult result = train(tiny_config(dir, "run"));
  SafetensorsFile file = load_safetensors(result.checkpoint_path);
  // Same tensors, different spec: the strict load names the mismatching tensor.
  file.metadata["bnorm.spec"] = "conv3x3(5) bn relu maxpool2 flatten dropout(0.25) linear(8) bn relu linear(10)";
  try {
    model_file_from(file);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("conv1.weight"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bnorm
