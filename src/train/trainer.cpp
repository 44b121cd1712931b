#include "bnorm/train/trainer.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "bnorm/data/loader.hpp"
#include "bnorm/data/split.hpp"
#include "bnorm/io/file.hpp"
#include "bnorm/layers/loss.hpp"
#include "bnorm/train/checkpoint.hpp"

namespace bnorm {
namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* steps_csv_header = "step,epoch,lr,loss,accuracy,images_per_second";
constexpr const char* epochs_csv_header =
    "epoch,train_loss,train_accuracy,validation_loss,validation_accuracy,seconds,images_per_second";

// ---- the run: data, model, optimizer, loader, and where it stands.

struct Run {
  TrainConfig config;
  Dataset train, validation;
  Standardizer standardizer;
  std::vector<std::string> class_names;
  Model model;
  std::unique_ptr<Optimizer> optimizer;
  std::optional<LrSchedule> schedule;
  std::optional<BatchLoader> loader;
  std::int64_t steps_per_epoch = 0, total_steps = 0, epochs = 0;
  std::int64_t step = 0;
  EpochTotals epoch_totals;
};

// Data with the split and standardization; `standardizer` given: a resumed run's.
void load_data(Run& run, const Standardizer* standardizer) {
  const TrainConfig& config = run.config;
  TrainTestData data = load_dataset_folder(config.data_dir);
  run.class_names = data.train.class_names;
  run.train = std::move(data.train);
  if (config.validation_examples > 0) {
    TrainValidationSplit split =
        split_validation(run.train, {.count = config.validation_examples, .seed = config.seed});
    run.train = std::move(split.train);
    run.validation = std::move(split.validation);
  }
  run.standardizer = standardizer ? *standardizer : fit_standardizer(run.train, config.standardization);
  run.standardizer.apply(run.train);
  if (run.validation.size() > 0) run.standardizer.apply(run.validation);
  if (config.batch_size > run.train.size())
    throw std::invalid_argument("--batch-size " + std::to_string(config.batch_size) + " is larger than the " +
                                std::to_string(run.train.size()) + " training examples");
}

// Optimizer, schedule and loader, once the model exists.
void prepare_training(Run& run) {
  const TrainConfig& config = run.config;
  run.model.net.set_compute_input_grad(false);  // nothing needs d loss / d image
  run.model.net.train();
  run.optimizer = make_optimizer(config.optimizer, run.model.net.parameters(), config.optimizer_settings);
  run.loader.emplace(run.train, BatchLoaderOptions{.batch_size = config.batch_size,
                                                   .shuffle = true,
                                                   .seed = config.seed,
                                                   // a last batch of 1 cannot be batch-normalized
                                                   .drop_last = true,
                                                   .layout = config.model_options.layout});
  run.steps_per_epoch = run.loader->batches_per_epoch();
  run.total_steps = config.steps > 0 ? config.steps : config.epochs * run.steps_per_epoch;
  run.epochs = (run.total_steps + run.steps_per_epoch - 1) / run.steps_per_epoch;
  ScheduleOptions schedule_options = config.schedule_options;
  schedule_options.total_steps = run.total_steps;
  // A run shorter than the warm-up warms up over its first tenth instead.
  if (schedule_options.warmup_steps >= run.total_steps) schedule_options.warmup_steps = run.total_steps / 10;
  run.schedule.emplace(make_schedule(config.schedule, run.optimizer->learning_rate(), schedule_options));
}

Run new_run(const TrainConfig& config) {
  Run run{.config = config};
  if (config.batch_size < 2)
    throw std::invalid_argument("--batch-size must be at least 2 (batch normalization needs more than one "
                                "value per channel), got " + std::to_string(config.batch_size));
  if (config.epochs < 1 && config.steps < 1)
    throw std::invalid_argument("give --epochs or --steps greater than 0");
  load_data(run, nullptr);
  ModelOptions options = config.model_options;
  options.seed = config.seed;
  const Shape input({run.train.channels(), run.train.height(), run.train.width()});
  run.model = Model::build(expand_spec(config.model, config.builtin), input, options);
  if (run.model.output_shape.rank() != 1 || run.model.output_shape[0] != run.train.num_classes)
    throw std::invalid_argument("the model outputs " + run.model.output_shape.to_string() +
                                " per example but the data has " + std::to_string(run.train.num_classes) +
                                " classes: end the spec with linear(" + std::to_string(run.train.num_classes) + ")");
  prepare_training(run);
  return run;
}

// ---- CSV logs: appended step by step; on resume, cut back to the checkpoint.

void truncate_csv(const std::filesystem::path& path, const char* header, std::int64_t keep_up_to) {
  std::vector<std::string> kept = {header};
  if (std::ifstream in(path); in) {
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      long long key = 0;
      if (std::sscanf(line.c_str(), "%lld,", &key) == 1 && key <= keep_up_to && line.find(',') != std::string::npos)
        kept.push_back(line);
    }
  }
  std::string text;
  for (const std::string& line : kept) text += line + "\n";
  write_file_atomically(path, std::as_bytes(std::span(text.data(), text.size())));
}

class CsvAppender {
 public:
  explicit CsvAppender(const std::filesystem::path& path) : file_(std::fopen(path.c_str(), "a")) {
    if (!file_) throw std::runtime_error(path.string() + ": cannot open for appending");
  }
  ~CsvAppender() { std::fclose(file_); }
  CsvAppender(const CsvAppender&) = delete;
  CsvAppender& operator=(const CsvAppender&) = delete;
  void line(const std::string& text) {
    std::fputs(text.c_str(), file_);
    std::fputc('\n', file_);
    std::fflush(file_);
  }

 private:
  std::FILE* file_;
};

std::string csv_number(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6g", value);
  return buffer;
}

// ---- the loop.

void write_checkpoint(Run& run, const std::filesystem::path& path) {
  save_checkpoint(path, run.model, run.standardizer, run.class_names, *run.optimizer,
                  {.step = run.step, .loader = run.loader->state(), .epoch = run.epoch_totals,
                   .train_config_json = run.config.to_json()});
}

TrainResult run_loop(Run& run, const TrainEvents& events) {
  const std::filesystem::path& out = run.config.out_dir;
  const std::filesystem::path checkpoint_path = out / "checkpoint.safetensors";
  CsvAppender steps_csv(out / "steps.csv");
  CsvAppender epochs_csv(out / "epochs.csv");
  Sequential& net = run.model.net;
  TrainResult result{.checkpoint_path = checkpoint_path};

  Batch batch;
  while (run.step < run.total_steps) {
    const std::int64_t epoch = run.step / run.steps_per_epoch + 1;
    const std::int64_t step_in_epoch = run.step % run.steps_per_epoch + 1;
    if (step_in_epoch == 1 && events.epoch_started)
      events.epoch_started(epoch, run.epochs, std::min(run.steps_per_epoch, run.total_steps - run.step));
    if (!run.loader->next(batch) && !run.loader->next(batch))  // false once at each epoch's end
      throw std::logic_error("train: the data loader returned no batch");

    const Clock::time_point start = Clock::now();
    const double lr = run.schedule->lr(run.step);
    run.optimizer->set_learning_rate(lr);
    net.zero_grad();
    const Tensor logits = net.forward(batch.x);
    const CrossEntropyResult loss = softmax_cross_entropy(logits, batch.labels, true);
    net.backward(loss.dlogits);
    run.optimizer->step();
    ++run.step;
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

    EpochTotals& totals = run.epoch_totals;
    totals.loss_sum += loss.loss * static_cast<double>(batch.size());
    totals.correct += loss.correct;
    totals.examples += batch.size();
    totals.seconds += seconds;
    const StepReport report{
        .step = run.step, .epoch = epoch, .step_in_epoch = step_in_epoch,
        .steps_in_epoch = std::min(run.steps_per_epoch, run.total_steps - (epoch - 1) * run.steps_per_epoch),
        .lr = lr, .loss = loss.loss,
        .accuracy = static_cast<double>(loss.correct) / static_cast<double>(batch.size()),
        .epoch_loss = totals.loss_sum / static_cast<double>(totals.examples),
        .epoch_accuracy = static_cast<double>(totals.correct) / static_cast<double>(totals.examples),
        .images_per_second = static_cast<double>(totals.examples) / std::max(totals.seconds, 1e-9)};
    steps_csv.line(std::to_string(report.step) + "," + std::to_string(epoch) + "," + csv_number(lr) + "," +
                   csv_number(report.loss) + "," + csv_number(report.accuracy) + "," +
                   csv_number(static_cast<double>(batch.size()) / std::max(seconds, 1e-9)));
    if (events.step_done) events.step_done(report);

    const bool epoch_end = run.step % run.steps_per_epoch == 0 || run.step == run.total_steps;
    if (epoch_end) {
      EpochReport done{.epoch = epoch, .epochs = run.epochs,
                       .train_loss = report.epoch_loss, .train_accuracy = report.epoch_accuracy,
                       .seconds = totals.seconds, .images_per_second = report.images_per_second};
      if (run.validation.size() > 0)
        done.validation = evaluate(net, run.validation, {.layout = run.config.model_options.layout});
      epochs_csv.line(std::to_string(epoch) + "," + csv_number(done.train_loss) + "," +
                      csv_number(done.train_accuracy) + "," +
                      (done.validation ? csv_number(done.validation->loss) : "") + "," +
                      (done.validation ? csv_number(done.validation->accuracy) : "") + "," +
                      csv_number(done.seconds) + "," + csv_number(done.images_per_second));
      totals = {};
      result.last_epoch = done;
      if (events.epoch_done) events.epoch_done(done);
    }
    const bool stop = events.stop_requested && events.stop_requested();
    const bool periodic = run.config.checkpoint_every > 0 && run.step % run.config.checkpoint_every == 0;
    if (epoch_end || periodic || stop || run.step == run.total_steps) write_checkpoint(run, checkpoint_path);
    if (stop && run.step < run.total_steps) {
      result.stopped = true;
      break;
    }
  }
  result.steps = run.step;
  if (!result.stopped) {
    result.model_path = out / "model.safetensors";
    net.eval();
    save_model_file(result.model_path, run.model, run.standardizer, run.class_names,
                    {{"bnorm.train_config", run.config.to_json()}});
  }
  return result;
}

}  // namespace

// ---- configuration as JSON (checkpoints and config.json).

std::string TrainConfig::to_json() const {
  using nlohmann::json;
  auto optional_number = [](const auto& value) { return value ? json(*value) : json(nullptr); };
  const json j = {
      {"model", model},
      {"bn", builtin.bn},
      {"bn_position", to_string(builtin.bn_position)},
      {"dropout", builtin.dropout},
      {"layout", to_string(model_options.layout)},
      {"bn_eps", model_options.bn_eps},
      {"bn_momentum", optional_number(model_options.bn_momentum)},
      {"init", to_string(model_options.init.scheme)},
      {"init_sigma", model_options.init.sigma},
      {"data_dir", data_dir},
      {"validation_examples", validation_examples},
      {"standardization", to_string(standardization)},
      {"epochs", epochs},
      {"steps", steps},
      {"batch_size", batch_size},
      {"optimizer", optimizer},
      {"lr", optional_number(optimizer_settings.lr)},
      {"momentum", optional_number(optimizer_settings.momentum)},
      {"nesterov", optional_number(optimizer_settings.nesterov)},
      {"beta1", optional_number(optimizer_settings.beta1)},
      {"beta2", optional_number(optimizer_settings.beta2)},
      {"eps", optional_number(optimizer_settings.eps)},
      {"weight_decay", optional_number(optimizer_settings.weight_decay)},
      {"decay_biases_and_norm", optional_number(optimizer_settings.decay_biases_and_norm)},
      {"schedule", schedule},
      {"warmup_steps", schedule_options.warmup_steps},
      {"warmup_start_factor", schedule_options.warmup_start_factor},
      {"step_size", schedule_options.step_size},
      {"gamma", schedule_options.gamma},
      {"min_lr", schedule_options.min_lr},
      {"seed", seed},
      {"out_dir", out_dir.string()},
      {"checkpoint_every", checkpoint_every},
  };
  return j.dump(2);
}

TrainConfig TrainConfig::from_json(const std::string& text) {
  using nlohmann::json;
  TrainConfig c;
  try {
    const json j = json::parse(text);
    auto optional = [&](const char* key, auto& field) {
      using T = typename std::decay_t<decltype(field)>::value_type;
      if (j.at(key).is_null()) field.reset();
      else field = j.at(key).get<T>();
    };
    c.model = j.at("model").get<std::string>();
    c.builtin.bn = j.at("bn").get<bool>();
    c.builtin.bn_position = parse_bn_position(j.at("bn_position").get<std::string>());
    c.builtin.dropout = j.at("dropout").get<double>();
    const std::string layout = j.at("layout").get<std::string>();
    c.model_options.layout = layout == to_string(Layout::channels_last) ? Layout::channels_last : Layout::channels_first;
    c.model_options.bn_eps = j.at("bn_eps").get<double>();
    optional("bn_momentum", c.model_options.bn_momentum);
    c.model_options.init.scheme = parse_init_scheme(j.at("init").get<std::string>());
    c.model_options.init.sigma = j.at("init_sigma").get<double>();
    c.data_dir = j.at("data_dir").get<std::string>();
    c.validation_examples = j.at("validation_examples").get<std::int64_t>();
    c.standardization = parse_standardization(j.at("standardization").get<std::string>());
    c.epochs = j.at("epochs").get<std::int64_t>();
    c.steps = j.at("steps").get<std::int64_t>();
    c.batch_size = j.at("batch_size").get<std::int64_t>();
    c.optimizer = j.at("optimizer").get<std::string>();
    optional("lr", c.optimizer_settings.lr);
    optional("momentum", c.optimizer_settings.momentum);
    optional("nesterov", c.optimizer_settings.nesterov);
    optional("beta1", c.optimizer_settings.beta1);
    optional("beta2", c.optimizer_settings.beta2);
    optional("eps", c.optimizer_settings.eps);
    optional("weight_decay", c.optimizer_settings.weight_decay);
    optional("decay_biases_and_norm", c.optimizer_settings.decay_biases_and_norm);
    c.schedule = j.at("schedule").get<std::string>();
    c.schedule_options.warmup_steps = j.at("warmup_steps").get<std::int64_t>();
    c.schedule_options.warmup_start_factor = j.at("warmup_start_factor").get<double>();
    c.schedule_options.step_size = j.at("step_size").get<std::int64_t>();
    c.schedule_options.gamma = j.at("gamma").get<double>();
    c.schedule_options.min_lr = j.at("min_lr").get<double>();
    c.seed = j.at("seed").get<std::uint64_t>();
    c.out_dir = j.at("out_dir").get<std::string>();
    c.checkpoint_every = j.at("checkpoint_every").get<std::int64_t>();
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("training configuration: ") + e.what());
  }
  return c;
}

// ---- entry points.

TrainResult train(const TrainConfig& config, const TrainEvents& events) {
  std::filesystem::create_directories(config.out_dir);
  Run run = new_run(config);
  const std::string json = config.to_json();
  write_file_atomically(config.out_dir / "config.json", std::as_bytes(std::span(json.data(), json.size())));
  truncate_csv(config.out_dir / "steps.csv", steps_csv_header, 0);
  truncate_csv(config.out_dir / "epochs.csv", epochs_csv_header, 0);
  if (events.message)
    events.message(run.train.describe() + " for training" +
                   (run.validation.size() > 0 ? ", " + std::to_string(run.validation.size()) + " held out for validation" : "") +
                   "; " + std::to_string(run.total_steps) + " steps of " + std::to_string(config.batch_size) +
                   "; " + run.optimizer->describe() + "; " + run.schedule->describe());
  return run_loop(run, events);
}

TrainResult resume(const std::filesystem::path& checkpoint, const TrainEvents& events) {
  LoadedCheckpoint loaded = load_checkpoint(checkpoint);
  Run run{.config = TrainConfig::from_json(loaded.state.train_config_json)};
  run.config.out_dir = checkpoint.parent_path().empty() ? "." : checkpoint.parent_path();
  load_data(run, &loaded.model_file.standardizer);
  run.model = std::move(loaded.model_file.model);
  prepare_training(run);
  run.optimizer->load_state(loaded.optimizer);
  run.loader->set_state(loaded.state.loader);
  run.step = loaded.state.step;
  run.epoch_totals = loaded.state.epoch;
  const std::int64_t epochs_done = run.step / run.steps_per_epoch;
  truncate_csv(run.config.out_dir / "steps.csv", steps_csv_header, run.step);
  truncate_csv(run.config.out_dir / "epochs.csv", epochs_csv_header, epochs_done);
  if (events.message)
    events.message("resuming " + checkpoint.string() + " at step " + std::to_string(run.step) + " of " +
                   std::to_string(run.total_steps));
  return run_loop(run, events);
}

}  // namespace bnorm
