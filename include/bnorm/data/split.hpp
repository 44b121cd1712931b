// bnorm/data/split.hpp: taking examples out of a Dataset, and the seeded validation split.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

#include "bnorm/data/dataset.hpp"

namespace bnorm {

// A new Dataset (its own image memory) with the examples at `indices`, in that order. Throws
// std::out_of_range for an index outside [0, N).
Dataset select_examples(const Dataset& data, std::span<const std::int64_t> indices);

// Exactly one of count and fraction is set.
struct ValidationSplitOptions {
  std::optional<std::int64_t> count;  // examples held out, 0..N
  std::optional<double> fraction;     // or this fraction of N, in [0, 1], rounded to nearest
  std::uint64_t seed = 0;
};

struct TrainValidationSplit {
  Dataset train;
  Dataset validation;
};

// Holds out a random subset of `data` (a training set) for validation. Which examples are held
// out depends only on the seed and N: the first `count` steps of a forward Fisher-Yates shuffle
// of 0..N-1 (place i swaps with a uniform pick among i..N-1, Rng(seed).below) choose them.
// Both parts keep the examples in their original order. Throws std::invalid_argument for a bad
// count or fraction.
TrainValidationSplit split_validation(const Dataset& data, const ValidationSplitOptions& options);

}  // namespace bnorm
