// PLACEHOLDER: the benchmark harness is being written.
#include "tools/bench/bench.hpp"

#include <cstdio>

namespace bnorm::bench {
int run(const BenchOptions&) {
  std::fprintf(stderr, "bnorm bench: not implemented yet\n");
  return 1;
}
}  // namespace bnorm::bench
