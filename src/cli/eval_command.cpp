// `bnorm eval`: loss and accuracy of a model file (or checkpoint) on a data folder's test set.
#include <cstdio>

#include "bnorm/data/dataset.hpp"
#include "bnorm/io/model_file.hpp"
#include "bnorm/train/evaluate.hpp"
#include "cli/commands.hpp"

namespace bnorm::cli {

Command add_eval_command(CLI::App& parent) {
  struct Arguments {
    std::string model, data = default_dataset_dir, bn_stats = "running", format = "text";
    std::int64_t batch_size = EvalOptions{}.batch_size;
    int threads = 0;
  };
  auto args = std::make_shared<Arguments>();
  CLI::App* app = parent.add_subcommand("eval", "Loss and accuracy of a model on the test set of a data folder");
  app->add_option("--model", args->model, "Model file (model.safetensors) or checkpoint")->required();
  app->add_option("--data", args->data, "Folder with IDX or CIFAR-10 binary files")->capture_default_str();
  app->add_option("--bn-stats", args->bn_stats, "BatchNorm statistics: running estimates, or each test batch's own")
      ->check(CLI::IsMember({"running", "batch"}))->capture_default_str();
  app->add_option("--batch-size", args->batch_size, "Examples per forward pass")->check(CLI::PositiveNumber)->capture_default_str();
  app->add_option("--format", args->format, "text, or json with the keys accuracy, loss, examples")
      ->check(CLI::IsMember({"text", "json"}))->capture_default_str();
  app->add_option("--threads", args->threads, "Threads (0 = all cores)")->check(CLI::NonNegativeNumber);

  auto run = [args]() -> int {
    use_threads(args->threads);
    ModelFile file = load_model_file(args->model);
    Dataset test = load_dataset_folder(args->data).test;
    const Shape example({test.channels(), test.height(), test.width()});
    if (!(example == file.model.input_shape))
      throw std::invalid_argument(args->model + " takes examples of " + file.model.input_shape.to_string() + " but " +
                                  args->data + " holds " + example.to_string());
    file.standardizer.apply(test);
    const EvalResult result = evaluate(file.model.net, test,
                                       {.batch_size = args->batch_size,
                                        .bn_statistics = parse_bn_statistics(args->bn_stats),
                                        .layout = file.model.options.layout});
    if (args->format == "json")
      std::printf("{\"accuracy\": %.6f, \"loss\": %.6f, \"examples\": %lld}\n", result.accuracy, result.loss,
                  static_cast<long long>(result.examples));
    else
      std::printf("test accuracy %.2f%% (loss %.4f) on %lld examples\n", 100 * result.accuracy, result.loss,
                  static_cast<long long>(result.examples));
    return 0;
  };
  return {app, run};
}

}  // namespace bnorm::cli
