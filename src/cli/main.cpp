// The bnorm command-line program. Library errors become one clear line on stderr and a
// non-zero exit code.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "bnorm/kernels/batchnorm.hpp"
#include "tools/bench/bench.hpp"

namespace {

// `bnorm impls`: which batch-norm implementation runs each problem, and why others decline.
int list_implementations(const std::string& problem_shape) {
  bnorm::BatchNormProblem problem{.batch = 32, .channels = 64, .spatial = 56 * 56};
  if (!problem_shape.empty()) {
    long long n = 0, c = 0, s = 0;
    char layout[8] = {0};
    if (std::sscanf(problem_shape.c_str(), "n%lldc%llds%lld:%7s", &n, &c, &s, layout) < 3)
      throw std::invalid_argument("problem must look like n32c64s3136:nhwc, got '" + problem_shape + "'");
    problem = {.batch = n, .channels = c, .spatial = s,
               .layout = std::string(layout) == "nhwc" ? bnorm::Layout::channels_last
                                                       : bnorm::Layout::channels_first};
  }
  std::printf("problem %s, %d OpenMP threads\n", problem.to_string().c_str(), omp_get_max_threads());
  for (const bnorm::BatchNormImpl& impl : bnorm::batchnorm_implementations()) {
    const char* why = impl.declines(problem);
    std::printf("  %-12s %s\n", impl.name, why ? why : "accepts");
  }
  std::printf("selected: %s\n", bnorm::batchnorm_select(problem).name);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bnorm: batch normalization, exact and fast"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "bnorm 0.1.0");

  bnorm::bench::BenchOptions bench_options;
  CLI::App* bench = app.add_subcommand("bench", "Time batch-norm kernels against a speed-of-light probe, oneDNN and libtorch");
  bench->add_option("--format", bench_options.format, "Output format")->check(CLI::IsMember({"table", "json"}));
  bench->add_option("--filter", bench_options.filters, "Keep only cases whose name contains this text (repeatable)");
  bench->add_option("--repetitions", bench_options.repetitions, "Timed runs per measurement (0 = automatic)")->check(CLI::NonNegativeNumber);
  bench->add_flag("--quick", bench_options.quick, "Few repetitions: a smoke test, not a measurement");
  bench->add_option("--threads", bench_options.threads, "Threads for every implementation (0 = OpenMP's default)")->check(CLI::NonNegativeNumber);
  bench->add_option("--seconds", bench_options.seconds_per_case, "Automatic repetitions: stop once the slowest implementation has run this long in a case")->check(CLI::PositiveNumber);
  bench->add_flag("--list", bench_options.list, "Print the names of the cases that would run, and stop");

  std::string problem;
  CLI::App* impls = app.add_subcommand("impls", "Show which batch-norm implementation runs a problem and why others decline");
  impls->add_option("problem", problem, "Problem string, e.g. n32c64s3136:nhwc");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (bench->parsed()) return bnorm::bench::run(bench_options);
    if (impls->parsed()) return list_implementations(problem);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bnorm: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
