// The batch-norm benchmark behind `bnorm bench`: bnorm vs a speed-of-light probe vs oneDNN
// and libtorch (when built in), side by side in one run, validated before timing.
#pragma once

#include <string>
#include <vector>

namespace bnorm::bench {

struct BenchOptions {
  std::string format = "table";      // "table" or "json"
  std::vector<std::string> filters;  // substrings of case names to keep ("" = all)
  int repetitions = 0;               // timed runs per measurement; 0 = automatic
  bool quick = false;                // fewer repetitions, for smoke tests
};

// Runs the benchmark and prints to stdout; returns a process exit code.
int run(const BenchOptions& options);

}  // namespace bnorm::bench
