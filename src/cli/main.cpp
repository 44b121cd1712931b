// The bnorm command-line program: train, eval, predict, summary, and the benchmarks.
// Library errors become one clear line on stderr ("bnorm: error: ...") and exit code 1; a
// training run stopped by Ctrl-C exits with 130 after writing its checkpoint.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string_view>
#include <vector>

#include "cli/commands.hpp"

namespace bnorm::cli {

void use_threads(int threads) {
  if (threads > 0) omp_set_num_threads(threads);
}

}  // namespace bnorm::cli

int main(int argc, char** argv) {
  using namespace bnorm::cli;
  CLI::App app{"bnorm: batch normalization, exact and fast; train, evaluate and use batch-normalized networks"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "bnorm 0.1.0");
  const std::vector<Command> commands = {
      add_train_command(app),   add_eval_command(app),  add_predict_command(app),
      add_summary_command(app), add_bench_command(app), add_bench_train_command(app),
      add_impls_command(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (const Command& command : commands)
      if (command.app->parsed()) return command.run();
  } catch (const std::exception& e) {
    // Library messages may start with "bnorm: " themselves; say it once.
    std::string_view message = e.what();
    if (message.starts_with("bnorm: ")) message.remove_prefix(7);
    std::fprintf(stderr, "bnorm: error: %.*s\n", static_cast<int>(message.size()), message.data());
    return 1;
  }
  return 0;
}
