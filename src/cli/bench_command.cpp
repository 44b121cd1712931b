// `bnorm bench` (batch-norm kernels against the speed-of-light probe and the peers, see
// src/tools/bench) and `bnorm impls` (which implementation runs a problem, and why others decline).
#include <omp.h>

#include <cstdio>

#include "bnorm/kernels/batchnorm.hpp"
#include "cli/commands.hpp"
#include "tools/bench/bench.hpp"

namespace bnorm::cli {

Command add_bench_command(CLI::App& parent) {
  auto options = std::make_shared<bench::BenchOptions>();
  CLI::App* bench = parent.add_subcommand("bench", "Time batch-norm kernels against speed-of-light probes (one pass and two), oneDNN and libtorch");
  bench->add_option("--format", options->format, "Output format")->check(CLI::IsMember({"table", "json"}));
  bench->add_option("--filter", options->filters, "Keep only cases whose name contains this text (repeatable)");
  bench->add_option("--repetitions", options->repetitions, "Timed runs per measurement (0 = automatic)")->check(CLI::NonNegativeNumber);
  bench->add_flag("--quick", options->quick, "Few repetitions: a smoke test, not a measurement");
  bench->add_option("--threads", options->threads, "Threads for every implementation (0 = OpenMP's default)")->check(CLI::NonNegativeNumber);
  bench->add_option("--seconds", options->seconds_per_case, "Automatic repetitions: stop once the slowest implementation has run this long in a case")->check(CLI::PositiveNumber);
  bench->add_flag("--list", options->list, "Print the names of the cases that would run, and stop");
  // Parsed when the command runs, so that a bad name is a "bnorm: error:" line like others.
  auto stores = std::make_shared<std::string>("automatic");
  bench->add_option("--stores", *stores, "bnorm's output stores: automatic (default: streaming where the output goes to DRAM anyway), cached or streaming");
  return {bench, [options, stores] {
            options->stores = parse_output_stores(*stores);
            return bench::run(*options);
          }};
}

Command add_impls_command(CLI::App& parent) {
  auto problem_text = std::make_shared<std::string>();
  CLI::App* impls = parent.add_subcommand("impls", "Show which batch-norm implementation runs a problem and why others decline");
  impls->add_option("problem", *problem_text, "Problem string, e.g. n32c64h56w56:nhwc (the benchmark's names)");
  auto run = [problem_text]() -> int {
    const BatchNormProblem problem =
        BatchNormProblem::parse(problem_text->empty() ? "n32c64h56w56:nchw" : *problem_text);
    std::printf("problem %s, %d OpenMP threads\n", problem.to_string().c_str(), omp_get_max_threads());
    for (const BatchNormImpl& impl : batchnorm_implementations()) {
      const char* why = impl.declines(problem);
      std::printf("  %-12s %s\n", impl.name, why ? why : "accepts");
    }
    std::printf("selected: %s\n", batchnorm_select(problem).name);
    return 0;
  };
  return {impls, run};
}

}  // namespace bnorm::cli
