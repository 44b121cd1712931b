// The timing loop: contenders interleaved round-robin, one call per contender per
// repetition, so drift (frequency, other load on the machine) affects all of them alike.
#pragma once

#include <span>
#include <vector>

#include "tools/bench/bench.hpp"
#include "tools/bench/contender.hpp"

namespace bnorm::bench {

struct TimingPolicy {
  int warmup = 2;               // untimed calls per contender before the first timed one
  int min_repetitions = 5;      // automatic mode: at least this many
  int max_repetitions = 5000;   // and at most this many
  double target_seconds = 0.3;  // automatic mode: stop once the slowest contender has run
                                // this long in total (all contenders get the same count,
                                // as they interleave; a slow one thus bounds the case)
};

// From the command line: --repetitions R fixes the count, --quick makes it tiny.
TimingPolicy timing_policy(const BenchOptions& options);

struct Measurement {
  std::vector<double> seconds;  // one per timed call
  double median() const;
  double min() const;
};

// Times the contenders interleaved. Repetition r runs every contender once, starting at
// contender r % k so none is always first.
//
// Cold (sets > 1): each call takes the next buffer set in turn (0, 1, ..., sets-1, 0, ...;
// one counter shared by all contenders), so every call finds its data in DRAM. After each
// call (untimed) its output is written back and evicted: the set's out buffer
// (BufferPool::flush_outputs) and memory the contender allocated for its outputs
// (Contender::flush_own_outputs). So every call starts alike, its output in DRAM and no
// other contender's dirty lines in the caches. (Before, only libtorch's own output was
// flushed; the round-robin order puts each contender after the same one in 3 calls of 4,
// so bnorm always wrote back the probe's y inside its own time, oneDNN bnorm's, while the
// probe followed libtorch and oneDNN with clean caches: measured, the probe was flattered
// against all three by about a tenth; see docs/benchmarks.md.)
// Hot (sets = 1): every timed call on set 0 directly follows an untimed call of the same
// contender on set 0, so it finds x, dy and its output where its own previous call left
// them: in the caches of the threads that use them. Otherwise each contender would start
// from the previous contender's footprint (oneDNN's streaming stores evict the output; a
// different split of the work across threads leaves lines in the other core's L2; a
// single-threaded small problem would find half its data there).
std::vector<Measurement> time_interleaved(std::span<Contender* const> contenders,
                                          const BufferPool& pool, int sets,
                                          const TimingPolicy& policy);

}  // namespace bnorm::bench
