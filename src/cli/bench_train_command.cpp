// `bnorm bench-train`: training steps per second of a model on random data (forward, loss,
// backward, SGD-momentum step), the bnorm half of scripts/bench-train.py, which runs the
// PyTorch twin in the same session. Timed after warm-up steps (oneDNN builds its primitives on
// the first step of each shape).
#include <chrono>
#include <cstdio>

#include "bnorm/layers/loss.hpp"
#include "bnorm/train/optimizer.hpp"
#include "bnorm/util/random.hpp"
#include "cli/commands.hpp"
#include "cli/model_arguments.hpp"

namespace bnorm::cli {

Command add_bench_train_command(CLI::App& parent) {
  struct Arguments {
    ModelArguments model;
    std::int64_t batch_size = 128, warmup_steps = 5;
    std::vector<std::int64_t> input_shape = {1, 28, 28};
    double seconds = 3.0;
    int threads = 0;
    std::string format = "text";
  };
  auto args = std::make_shared<Arguments>();
  CLI::App* app = parent.add_subcommand("bench-train", "Time training steps of a model on random data (images per second)");
  args->model.add_to(*app);
  app->add_option("--batch-size", args->batch_size, "Mini-batch size")->check(CLI::Range(2, 1 << 20))->capture_default_str();
  app->add_option("--input-shape", args->input_shape, "Per-example input shape (C H W)")->expected(1, 3)->capture_default_str();
  app->add_option("--seconds", args->seconds, "Timed seconds (at least 5 steps)")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--warmup", args->warmup_steps, "Untimed steps first")->check(CLI::NonNegativeNumber)->capture_default_str();
  app->add_option("--threads", args->threads, "Threads (0 = all cores)")->check(CLI::NonNegativeNumber);
  app->add_option("--format", args->format, "text or json")->check(CLI::IsMember({"text", "json"}))->capture_default_str();

  auto run = [args]() -> int {
    use_threads(args->threads);
    Model model = Model::build(expand_spec(args->model.model_text(), args->model.builtin_options()),
                               Shape(args->input_shape), args->model.model_options());
    Sequential& net = model.net;
    net.train();
    net.set_compute_input_grad(false);
    Sgd optimizer(net.parameters(), {.lr = 0.01, .momentum = 0.9});

    std::vector<std::int64_t> dims = {args->batch_size};
    for (std::int64_t d : args->input_shape) dims.push_back(d);
    Rng rng(1);
    Tensor x = Tensor::empty(Shape(dims), model.options.layout);
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data_f32()[i] = static_cast<float>(rng.normal());
    const std::int64_t classes = model.output_shape[0];
    std::vector<std::int32_t> labels(static_cast<std::size_t>(args->batch_size));
    for (auto& label : labels) label = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(classes)));

    auto step = [&] {
      net.zero_grad();
      const CrossEntropyResult loss = softmax_cross_entropy(net.forward(x), labels, true);
      net.backward(loss.dlogits);
      optimizer.step();
    };
    for (std::int64_t i = 0; i < args->warmup_steps; ++i) step();
    using Clock = std::chrono::steady_clock;
    const Clock::time_point start = Clock::now();
    std::int64_t steps = 0;
    double elapsed = 0;
    do {
      step();
      ++steps;
      elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    } while (elapsed < args->seconds || steps < 5);
    const double images_per_second = static_cast<double>(steps * args->batch_size) / elapsed;
    if (args->format == "json")
      std::printf("{\"model\": \"%s\", \"bn\": %s, \"batch_size\": %lld, \"steps\": %lld, \"seconds\": %.4f, "
                  "\"images_per_second\": %.2f}\n",
                  args->model.model.c_str(), args->model.bn ? "true" : "false", static_cast<long long>(args->batch_size),
                  static_cast<long long>(steps), elapsed, images_per_second);
    else
      std::printf("%s%s batch %lld: %lld steps in %.2f s, %.0f images/s\n", args->model.model.c_str(),
                  args->model.bn ? " --bn" : " --no-bn", static_cast<long long>(args->batch_size),
                  static_cast<long long>(steps), elapsed, images_per_second);
    return 0;
  };
  return {app, run};
}

}  // namespace bnorm::cli
