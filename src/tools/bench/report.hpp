// Reporting: the human table and the JSON array (keys shape, layout, op, cache, impl,
// median_us, sol_us, plus extras such as two_pass_us) of one benchmark run.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "bnorm/kernels/batchnorm.hpp"
#include "tools/bench/cases.hpp"

namespace bnorm::bench {

// One implementation in one case.
struct ResultRow {
  BenchCase bench_case;
  std::string impl;     // "bnorm", "onednn", "libtorch"
  std::string detail;   // bnorm: the kernel that ran; peers: library version
  bool ok = true;       // false: failed validation or threw; not timed
  std::string error;    // why, when !ok
  double median_us = 0.0;
  double min_us = 0.0;
  int repetitions = 0;
  double sol_us = 0.0;     // the probe's median in the same interleaved run
  double sol_min_us = 0.0; // the probe's fastest call in that run
  double two_pass_us = 0.0; // the two-pass probe's median in that run (0: not timed)
  double max_error = 0.0;  // worst relative error against the reference
  int sets = 1;            // buffer sets rotated through (1 = hot)
};

struct RunInfo {
  int threads = 1;
  std::size_t l3_bytes = 0;
  OutputStores bnorm_stores = OutputStores::automatic;  // bnorm bench --stores
  std::string probe_isa;             // "avx2" or "baseline"
  std::vector<std::string> peers;    // built in, e.g. "onednn 2.6.3"
  std::vector<std::string> absent;   // not built in, e.g. "libtorch"
};

// GB/s of the unavoidable traffic (Workload::unavoidable_bytes) in `us` microseconds.
double gigabytes_per_second(const Workload& workload, double us);

void print_table(std::FILE* out, const RunInfo& info, const std::vector<ResultRow>& rows);
void print_json(std::FILE* out, const RunInfo& info, const std::vector<ResultRow>& rows);

}  // namespace bnorm::bench
