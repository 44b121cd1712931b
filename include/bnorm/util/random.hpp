// bnorm/util/random.hpp: seeded, reproducible random numbers.
//
// Two tools, for two needs:
//   Rng            a sequential generator (xoshiro256**, Blackman & Vigna 2018) whose whole
//                  state is four 64-bit words, so a checkpoint can save and restore it exactly
//                  (weight initialization, shuffling);
//   counter_hash   a stateless hash of (seed, stream, index) (splitmix64 finalizer), for
//                  random numbers drawn in parallel loops: each element's number depends only
//                  on its index, so results are identical whatever the thread count (Dropout).
// Distributions are written here rather than taken from <random>, whose algorithms differ
// between standard libraries: a model trained with one seed must be the same everywhere.
#pragma once

#include <array>
#include <cstdint>

namespace bnorm {

class Rng {
 public:
  using State = std::array<std::uint64_t, 4>;

  explicit Rng(std::uint64_t seed = 0) { reseed(seed); }
  void reseed(std::uint64_t seed);

  std::uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits.
  double uniform();
  // Uniform integer in [0, bound), without modulo bias (Lemire 2019). bound > 0.
  std::uint64_t below(std::uint64_t bound);
  // Standard normal (Box-Muller; one value per pair, so that state() is the whole state).
  double normal();

  State state() const { return s_; }
  void set_state(const State& state) { s_ = state; }

 private:
  State s_{};
};

// splitmix64 finalizer of a combination of the three inputs: a well-mixed 64-bit value.
std::uint64_t counter_hash(std::uint64_t seed, std::uint64_t stream, std::uint64_t index);
// The same as a float uniform in [0, 1) (24 random bits).
inline float counter_uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t index) {
  return static_cast<float>(counter_hash(seed, stream, index) >> 40) * (1.0f / 16777216.0f);
}

}  // namespace bnorm
