// The batch-norm benchmark behind `bnorm bench`: bnorm vs a speed-of-light probe vs oneDNN
// and libtorch (when built in), side by side in one run, validated before timing.
// The method (cold/hot data, the probe, interleaving, validation) is in docs/benchmarks.md.
#pragma once

#include <string>
#include <vector>

#include "bnorm/kernels/batchnorm.hpp"

namespace bnorm::bench {

struct BenchOptions {
  std::string format = "table";      // "table" or "json"
  std::vector<std::string> filters;  // substrings of case names to keep ("" = all)
  int repetitions = 0;               // timed runs per measurement; 0 = automatic
  bool quick = false;                // fewer repetitions, for smoke tests
  int threads = 0;                   // threads for every implementation; 0 = OpenMP's default
  double seconds_per_case = 0.3;     // automatic repetitions: stop once one implementation
                                     // has run this long in a case (after a minimum count)
  bool list = false;                 // print the case names that would run, and stop
  OutputStores stores = OutputStores::automatic;  // bnorm's store policy (the peers' are theirs)
};

// Runs the benchmark and prints to stdout; returns a process exit code:
// 0 success, 2 when some implementation failed validation (reported, not timed).
int run(const BenchOptions& options);

}  // namespace bnorm::bench
