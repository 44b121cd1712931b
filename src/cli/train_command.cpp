// `bnorm train`: trains a network on a data folder (Fashion-MNIST by default) with a progress
// bar, writing the model, checkpoints and metrics to --out (bnorm/train/trainer.hpp).
#include <cstdio>
#include <filesystem>

#include "bnorm/train/trainer.hpp"
#include "cli/commands.hpp"
#include "cli/interrupt.hpp"
#include "cli/model_arguments.hpp"
#include "cli/progress.hpp"

namespace bnorm::cli {
namespace {

// Defaults come from TrainConfig (SGD) and AdamOptions, not from here.
struct TrainArguments {
  ModelArguments model;
  TrainConfig config;
  double lr = *config.optimizer_settings.lr;
  double momentum = *config.optimizer_settings.momentum;
  bool nesterov = *config.optimizer_settings.nesterov;
  double weight_decay = *config.optimizer_settings.weight_decay;
  double beta1 = AdamOptions{}.beta1, beta2 = AdamOptions{}.beta2, adam_eps = AdamOptions{}.eps;
  bool decay_all = false;
  std::string standardize = to_string(config.standardization);
  int threads = 0;
  std::string resume;
};

TrainEvents console_events(ProgressBar& bar) {
  TrainEvents events;
  events.message = [](const std::string& text) { std::fprintf(stderr, "%s\n", text.c_str()); };
  events.epoch_started = [&bar](std::int64_t epoch, std::int64_t epochs, std::int64_t steps) {
    bar.start("epoch " + std::to_string(epoch) + "/" + std::to_string(epochs), steps);
  };
  events.step_done = [&bar](const StepReport& r) {
    bar.update(r.step_in_epoch, r.epoch_loss, r.epoch_accuracy, r.images_per_second);
  };
  events.epoch_done = [&bar](const EpochReport& r) {
    bar.finish();
    std::fprintf(stderr, "epoch %lld/%lld: train loss %.4f acc %.2f%%", static_cast<long long>(r.epoch),
                 static_cast<long long>(r.epochs), r.train_loss, 100 * r.train_accuracy);
    if (r.validation)
      std::fprintf(stderr, ", validation loss %.4f acc %.2f%%", r.validation->loss, 100 * r.validation->accuracy);
    std::fprintf(stderr, ", %.1f s, %.0f img/s\n", r.seconds, r.images_per_second);
  };
  events.stop_requested = [] { return stop_requested(); };
  return events;
}

}  // namespace

Command add_train_command(CLI::App& parent) {
  auto args = std::make_shared<TrainArguments>();
  TrainConfig& c = args->config;
  CLI::App* app = parent.add_subcommand("train", "Train a network; writes model.safetensors, checkpoints and metrics (CSV) to --out");
  args->model.add_to(*app);
  app->add_option("--data", c.data_dir, "Folder with IDX (MNIST/Fashion-MNIST) or CIFAR-10 binary files")->capture_default_str();
  app->add_option("--validation", c.validation_examples, "Training examples held out for validation (seeded)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app->add_option("--standardize", args->standardize, "Input standardization from the training set")
      ->check(CLI::IsMember({"none", "global", "per-channel", "per-pixel"}))->capture_default_str();
  app->add_option("--epochs", c.epochs, "Epochs (ignored when --steps is given)")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--steps", c.steps, "Train this many steps instead of --epochs")->check(CLI::NonNegativeNumber);
  app->add_option("--batch-size", c.batch_size, "Mini-batch size (>= 2 with batch normalization)")->capture_default_str();
  app->add_option("--optimizer", c.optimizer, "sgd, adam or adamw")->check(CLI::IsMember({"sgd", "adam", "adamw"}))->capture_default_str();
  char lr_help[96];
  std::snprintf(lr_help, sizeof lr_help, "Base learning rate (default: sgd %g, adam and adamw %g)", args->lr, AdamOptions{}.lr);
  app->add_option("--lr", args->lr, lr_help)->check(CLI::PositiveNumber);
  app->add_option("--schedule", c.schedule, "Learning-rate schedule: constant, step or cosine")
      ->check(CLI::IsMember({"constant", "step", "cosine"}))->capture_default_str();
  app->add_option("--warmup", c.schedule_options.warmup_steps, "Linear warm-up steps")->check(CLI::NonNegativeNumber)->capture_default_str();
  app->add_option("--step-size", c.schedule_options.step_size, "step schedule: steps between decays");
  app->add_option("--gamma", c.schedule_options.gamma, "step schedule: decay factor")->capture_default_str();
  app->add_option("--momentum", args->momentum, "sgd: momentum")->capture_default_str();
  app->add_flag("--nesterov,!--no-nesterov", args->nesterov, "sgd: Nesterov momentum")->capture_default_str();
  app->add_option("--beta1", args->beta1, "adam, adamw: beta1")->capture_default_str();
  app->add_option("--beta2", args->beta2, "adam, adamw: beta2")->capture_default_str();
  app->add_option("--adam-eps", args->adam_eps, "adam, adamw: eps")->capture_default_str();
  app->add_option("--weight-decay", args->weight_decay, "Weight decay (L2 for sgd and adam, decoupled for adamw)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app->add_flag("--decay-all", args->decay_all, "Apply weight decay to biases and BN parameters too");
  app->add_option("--seed", c.seed, "Seed of the data order, validation split, initialization and dropout")->capture_default_str();
  app->add_option("--threads", args->threads, "Threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  app->add_option("--checkpoint-every", c.checkpoint_every, "Also checkpoint every this many steps (0 = at epoch ends only)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  app->add_option("--resume", args->resume, "Continue the run of this checkpoint (its options are used; others are ignored)");
  app->add_option("--out", c.out_dir, "Output folder")->capture_default_str();

  auto run = [args, app]() -> int {
    use_threads(args->threads);
    install_stop_handlers();
    ProgressBar bar;
    const TrainEvents events = console_events(bar);
    TrainResult result;
    if (!args->resume.empty()) {
      result = resume(args->resume, events);
    } else {
      TrainConfig config = args->config;
      config.model = args->model.model_text();
      config.builtin = args->model.builtin_options();
      config.model_options = args->model.model_options();
      config.standardization = parse_standardization(args->standardize);
      const bool adam = config.optimizer != "sgd";
      config.optimizer_settings = {.lr = app->count("--lr") || !adam ? args->lr : AdamOptions{}.lr,
                                   .weight_decay = args->weight_decay,
                                   .decay_biases_and_norm = args->decay_all};
      if (!adam) {
        config.optimizer_settings.momentum = args->momentum;
        config.optimizer_settings.nesterov = args->nesterov && args->momentum > 0;
      } else {
        config.optimizer_settings.beta1 = args->beta1;
        config.optimizer_settings.beta2 = args->beta2;
        config.optimizer_settings.eps = args->adam_eps;
      }
      result = train(config, events);
    }
    bar.finish();
    if (result.stopped) {
      std::fprintf(stderr, "stopped at step %lld; checkpoint %s (continue with --resume %s)\n",
                   static_cast<long long>(result.steps), result.checkpoint_path.c_str(), result.checkpoint_path.c_str());
      return 130;
    }
    std::fprintf(stderr, "model written to %s\n", result.model_path.c_str());
    return 0;
  };
  return {app, run};
}

}  // namespace bnorm::cli
