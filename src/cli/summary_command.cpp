// `bnorm summary`: layers, output shapes, parameter counts and dropped biases of a model file,
// a built-in model or spec text.
#include <cstdio>
#include <filesystem>

#include "bnorm/io/model_file.hpp"
#include "bnorm/model/summary.hpp"
#include "cli/commands.hpp"
#include "cli/model_arguments.hpp"

namespace bnorm::cli {

Command add_summary_command(CLI::App& parent) {
  struct Arguments {
    ModelArguments model;
    std::vector<std::int64_t> input_shape = {1, 28, 28};
  };
  auto args = std::make_shared<Arguments>();
  CLI::App* app = parent.add_subcommand("summary", "Show a model's layers, output shapes, parameter counts and dropped biases");
  args->model.add_to(*app);
  app->get_option("--model")->description("A model file (.safetensors), a built-in model, spec text, or a file holding spec text");
  app->add_option("--input-shape", args->input_shape, "Per-example input shape for specs and built-ins (C H W)")
      ->expected(1, 3)->capture_default_str();

  auto run = [args]() -> int {
    const std::string& name = args->model.model;
    std::error_code error;
    if (name.ends_with(".safetensors") || (std::filesystem::is_regular_file(name, error) && !is_builtin(name) &&
                                           std::filesystem::path(name).extension() == ".safetensors")) {
      ModelFile file = load_model_file(name);
      std::printf("%s\nspec: %s\n", name.c_str(), file.model.spec.c_str());
      std::fputs(format_summary(file.model.summary()).c_str(), stdout);
      return 0;
    }
    ModelOptions options = args->model.model_options();
    Model model = Model::build(expand_spec(args->model.model_text(), args->model.builtin_options()),
                               Shape(args->input_shape), options);
    std::printf("spec: %s\n", model.spec.c_str());
    std::fputs(format_summary(model.summary()).c_str(), stdout);
    return 0;
  };
  return {app, run};
}

}  // namespace bnorm::cli
