// The interleaved timing loop. Nothing is allocated between the clock reads: the sample
// vectors are reserved before the loop.
#include "tools/bench/timing.hpp"

#include <algorithm>
#include <chrono>

namespace bnorm::bench {

TimingPolicy timing_policy(const BenchOptions& options) {
  TimingPolicy policy;
  policy.target_seconds = options.seconds_per_case;
  if (options.quick) policy = {.warmup = 1, .min_repetitions = 3, .max_repetitions = 3, .target_seconds = 0};
  if (options.repetitions > 0) {
    policy.min_repetitions = options.repetitions;
    policy.max_repetitions = options.repetitions;
  }
  return policy;
}

double Measurement::median() const {
  if (seconds.empty()) return 0.0;
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

double Measurement::min() const {
  return seconds.empty() ? 0.0 : *std::min_element(seconds.begin(), seconds.end());
}

std::vector<Measurement> time_interleaved(std::span<Contender* const> contenders,
                                          const BufferPool& pool, int sets,
                                          const TimingPolicy& policy) {
  using clock = std::chrono::steady_clock;
  const std::size_t k = contenders.size();
  std::vector<Measurement> results(k);
  std::vector<double> total(k, 0.0);
  for (Measurement& m : results) m.seconds.reserve(static_cast<std::size_t>(policy.max_repetitions));
  if (k == 0) return results;

  const bool cold = sets > 1;  // a cold pool has at least two sets (cold_set_count)
  int next_set = 0;
  auto take_set = [&] {
    const int set = next_set;
    next_set = next_set + 1 == sets ? 0 : next_set + 1;
    return set;
  };

  for (int w = 0; w < policy.warmup; ++w)
    for (Contender* c : contenders) c->run(take_set());

  for (int rep = 0; rep < policy.max_repetitions; ++rep) {
    for (std::size_t j = 0; j < k; ++j) {
      const std::size_t i = (static_cast<std::size_t>(rep) + j) % k;
      const int set = take_set();
      if (!cold) contenders[i]->run(set);  // untimed: leaves set 0 as this contender uses it
      const clock::time_point start = clock::now();
      contenders[i]->run(set);
      const clock::time_point stop = clock::now();
      if (cold) pool.flush_outputs(set), contenders[i]->flush_own_outputs();
      const double s = std::chrono::duration<double>(stop - start).count();
      results[i].seconds.push_back(s);  // capacity reserved: no allocation
      total[i] += s;
    }
    const double slowest = *std::max_element(total.begin(), total.end());
    if (rep + 1 >= policy.min_repetitions && slowest >= policy.target_seconds) break;
  }
  return results;
}

}  // namespace bnorm::bench
