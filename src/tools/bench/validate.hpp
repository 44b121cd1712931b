// Validation: bnorm's reference kernels (double accumulation, plain loops) produce the
// expected results for a workload; every contender's results are compared with them
// before it is timed.
#pragma once

#include <string>
#include <vector>

#include "tools/bench/buffers.hpp"
#include "tools/bench/contender.hpp"

namespace bnorm::bench {

struct Expected {
  FloatBuffer out;                   // [numel] y or dx
  std::vector<float> mean, invstd;   // [C] forward_train
  std::vector<float> dgamma, dbeta;  // [C] backward
};

// Runs the reference implementation on set 0 of the pool. Also fills the statistics in
// params (mean, var, invstd of x), which forward_infer and backward take as inputs, so it
// must run before any contender is prepared.
Expected compute_reference(const Workload& workload, const BufferPool& pool,
                           ChannelParams& params);

struct Verdict {
  bool ok = true;
  double max_error = 0.0;  // worst relative error over every output checked
  std::string message;     // what failed and where, empty when ok
};

// Relative error of element i: |got - want| / max(|want|, rms(want)), so large values are
// held to `tolerance` relatively and values near zero to `tolerance` times the output's
// typical size. NaN or infinity fails.
Verdict validate(const Workload& workload, const Expected& expected,
                 const ContenderOutputs& got, double tolerance = 1e-4);

}  // namespace bnorm::bench
