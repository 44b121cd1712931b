// `bnorm predict`: class, probabilities and logits of each image of an IDX file, or of one
// PGM/PNG image, in eval mode (BatchNorm with its running statistics).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "bnorm/data/dataset.hpp"
#include "bnorm/data/image.hpp"
#include "bnorm/data/loader.hpp"
#include "bnorm/io/model_file.hpp"
#include "bnorm/layers/loss.hpp"
#include "cli/commands.hpp"

namespace bnorm::cli {
namespace {

bool is_image_file(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".pgm" || ext == ".ppm" || ext == ".pnm";
}

// (N, C, H, W) channels_first in [0, 1]: the images of an IDX file, or one image.
Tensor read_inputs(const std::string& path, const Shape& example) {
  if (is_image_file(path)) return read_image(path, {.channels = static_cast<int>(example[0])});
  return load_idx_images(path);
}

}  // namespace

Command add_predict_command(CLI::App& parent) {
  struct Arguments {
    std::string model, images, format = "text";
    std::int64_t first = 0;
    int threads = 0;
  };
  auto args = std::make_shared<Arguments>();
  CLI::App* app = parent.add_subcommand("predict", "Classify the images of an IDX file, or one PGM/PNG image");
  app->add_option("--model", args->model, "Model file (model.safetensors) or checkpoint")->required();
  app->add_option("--images", args->images, "IDX image file (plain or .gz), or a .pgm/.png image")->required();
  app->add_option("--first", args->first, "Only the first K images (0 = all)")->check(CLI::NonNegativeNumber);
  app->add_option("--format", args->format, "text, or json: an array of {index, class, class_name, probabilities, logits}")
      ->check(CLI::IsMember({"text", "json"}))->capture_default_str();
  app->add_option("--threads", args->threads, "Threads (0 = all cores)")->check(CLI::NonNegativeNumber);

  auto run = [args]() -> int {
    use_threads(args->threads);
    ModelFile file = load_model_file(args->model);
    const Shape& example = file.model.input_shape;
    const Tensor images = read_inputs(args->images, example);
    const Shape got({images.dim(1), images.dim(2), images.dim(3)});
    if (!(got == example))
      throw std::invalid_argument(args->images + ": images of " + got.to_string() + " but the model takes " +
                                  example.to_string());
    const std::int64_t n = args->first > 0 ? std::min(args->first, images.dim(0)) : images.dim(0);
    std::vector<std::int64_t> first_n(static_cast<std::size_t>(n));
    std::iota(first_n.begin(), first_n.end(), 0);
    Tensor x = gather_examples(images, first_n, file.model.options.layout);
    file.standardizer.apply(x);
    const Tensor logits = file.model.net.forward(x);
    const Tensor probabilities = softmax(logits);
    const std::int64_t k = logits.dim(1);

    if (args->format == "json") std::printf("[");
    for (std::int64_t i = 0; i < n; ++i) {
      const float* z = logits.data_f32() + i * k;
      const float* p = probabilities.data_f32() + i * k;
      const std::int64_t best = std::max_element(p, p + k) - p;
      const std::string& name = file.class_names[static_cast<std::size_t>(best)];
      if (args->format == "json") {
        std::printf("%s\n  {\"index\": %lld, \"class\": %lld, \"class_name\": \"%s\", \"probabilities\": [", i ? "," : "",
                    static_cast<long long>(i), static_cast<long long>(best), name.c_str());
        for (std::int64_t j = 0; j < k; ++j) std::printf("%s%.6g", j ? ", " : "", p[j]);
        std::printf("], \"logits\": [");
        for (std::int64_t j = 0; j < k; ++j) std::printf("%s%.6g", j ? ", " : "", z[j]);
        std::printf("]}");
      } else {
        std::printf("%lld: %s (class %lld, probability %.4f)\n", static_cast<long long>(i), name.c_str(),
                    static_cast<long long>(best), p[best]);
      }
    }
    if (args->format == "json") std::printf("\n]\n");
    return 0;
  };
  return {app, run};
}

}  // namespace bnorm::cli
