// One implementation under test ("contender"): the speed-of-light probe (and the two-pass
// probe), bnorm, and the peers oneDNN and libtorch. The harness drives them all through this
// interface, so the timing loop, validation and reporting are written once.
//
// Life of a contender in one workload:
//   prepare(workload, pool, params)  everything that allocates (primitives, tensor views of
//                                    every buffer set, workspace); accumulators zeroed
//   run(0); outputs()                validation against the reference (not timed)
//   run(set) ...                     timed, interleaved with the other contenders
#pragma once

#include <memory>
#include <vector>

#include "tools/bench/buffers.hpp"
#include "tools/bench/cases.hpp"

namespace bnorm::bench {

// What one run on set 0 produced, for validation. Vectors the op does not produce stay empty.
struct ContenderOutputs {
  const float* out = nullptr;        // [numel] y or dx, in the workload's layout
  std::vector<float> mean, invstd;   // [C] forward_train: batch statistics
  std::vector<float> dgamma, dbeta;  // [C] backward
};

class Contender {
 public:
  virtual ~Contender() = default;
  virtual const char* name() const = 0;
  // False for the probe, which computes no batch norm and is not checked.
  virtual bool computes_batchnorm() const { return true; }
  virtual void prepare(const Workload& workload, const BufferPool& pool,
                       const ChannelParams& params) = 0;
  // The timed call: the workload's op on buffer set `set`. The harness allocates nothing
  // around it; what a peer library allocates inside its own call is part of its cost.
  virtual void run(int set) = 0;
  // Cold measurements call this after each run (untimed), when the harness has flushed the
  // set's out buffer from the caches (time_interleaved). A contender that writes into memory
  // it allocated itself, not into the buffer set (libtorch allocates its outputs on every
  // call, and glibc hands back the block it freed on the previous call), flushes that memory
  // here, so that its output starts the next call in DRAM like everyone else's. Otherwise
  // "cold" would time it writing into cache.
  virtual void flush_own_outputs() {}
  // Valid after prepare() and exactly one run(0). May copy (never timed).
  virtual ContenderOutputs outputs() = 0;
  // Extra words for the report, e.g. which bnorm kernel ran ("reference").
  virtual std::string detail() const { return {}; }
};

std::unique_ptr<Contender> make_probe_contender();
// forward_train and backward only: their ceiling as two passes, in the order the workload's
// layout allows (probe_loops.hpp).
std::unique_ptr<Contender> make_two_pass_probe_contender(const Workload& workload);
// bnorm through its public entry points, with the given store policy (OutputStores).
std::unique_ptr<Contender> make_bnorm_contender(OutputStores stores);
#ifdef BNORM_HAVE_ONEDNN
std::unique_ptr<Contender> make_onednn_contender();
#endif
#ifdef BNORM_HAVE_LIBTORCH
std::unique_ptr<Contender> make_libtorch_contender();
#endif

}  // namespace bnorm::bench
