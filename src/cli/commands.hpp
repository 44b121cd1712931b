// commands.hpp: the subcommands of the bnorm program. Each add_*_command registers its options
// on the parent app and returns the function that runs it once the command line is parsed.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>

namespace bnorm::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;  // returns the exit code; throws for errors (main prints them)
};

Command add_bench_command(CLI::App& parent);        // bench_command.cpp
Command add_impls_command(CLI::App& parent);        // bench_command.cpp
Command add_train_command(CLI::App& parent);        // train_command.cpp
Command add_eval_command(CLI::App& parent);         // eval_command.cpp
Command add_predict_command(CLI::App& parent);      // predict_command.cpp
Command add_summary_command(CLI::App& parent);      // summary_command.cpp
Command add_bench_train_command(CLI::App& parent);  // bench_train_command.cpp

// Sets the OpenMP thread count when threads > 0.
void use_threads(int threads);

}  // namespace bnorm::cli
