// bnorm/data/loader.hpp: mini-batches of a Dataset, shuffled per epoch, resumable bit for bit.
//
// Each epoch visits every example exactly once. With shuffle on, the order of epoch e is a
// Fisher-Yates shuffle of 0..N-1 (starting from the identity, Rng::below) drawn from the
// generator as it stands at the start of that epoch; the generator then carries on to the next
// epoch. The whole position of the loader is therefore LoaderState {epoch, position, rng state
// at the start of the epoch}: restoring it (set_state) into a loader of the same data and
// options reproduces the remaining batches exactly, in this process or after a restart.
//
// Batches are gathered with one memcpy per example (a transpose per example for channels_last
// with C > 1), in parallel for large batches. Every batch gets fresh memory: a layer may keep
// a reference to its input.
#pragma once

#include <cstdint>
#include <vector>

#include "bnorm/data/dataset.hpp"
#include "bnorm/tensor/tensor.hpp"
#include "bnorm/util/random.hpp"

namespace bnorm {

struct BatchLoaderOptions {
  std::int64_t batch_size = 32;
  bool shuffle = true;
  std::uint64_t seed = 0;
  bool drop_last = false;  // skip the last batch of an epoch when it is smaller than batch_size
  Layout layout = Layout::channels_first;  // memory layout of Batch::x
};

struct Batch {
  Tensor x;                           // (B, C, H, W) in the loader's layout
  std::vector<std::int32_t> labels;   // B
  std::vector<std::int64_t> indices;  // B: where each example is in the Dataset
  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
};

// Everything needed to resume. Save it with a training checkpoint.
struct LoaderState {
  std::int64_t epoch = 0;     // epochs completed
  std::int64_t position = 0;  // examples of the current epoch already handed out
  Rng::State rng{};           // the generator at the start of the current epoch
  bool operator==(const LoaderState&) const = default;
};

class BatchLoader {
 public:
  // Keeps a copy of `data` (which shares its image memory). Throws std::invalid_argument for
  // batch_size < 1, or for an empty or inconsistent Dataset.
  BatchLoader(const Dataset& data, const BatchLoaderOptions& options);

  // Fills `batch` with the next batch of the current epoch and returns true; at the end of
  // the epoch returns false (leaving `batch` alone) and moves to the next epoch, so that
  //   while (loader.next(batch)) { ... }
  // is one epoch and the same loop again is the next one.
  bool next(Batch& batch);

  std::int64_t batches_per_epoch() const;
  std::int64_t epoch() const { return state_.epoch; }
  const BatchLoaderOptions& options() const { return options_; }
  const Dataset& data() const { return data_; }
  // The order of the current epoch (dataset indices).
  const std::vector<std::int64_t>& order() const { return order_; }

  LoaderState state() const { return state_; }
  // Throws std::invalid_argument when position is outside [0, N] or epoch is negative.
  void set_state(const LoaderState& state);

 private:
  void start_epoch();  // order_ from state_.rng; rng_after_ is where the generator ends up

  Dataset data_;
  BatchLoaderOptions options_;
  LoaderState state_;
  Rng::State rng_after_{};
  std::vector<std::int64_t> order_;
};

// Copies the examples at `indices` of `images` ((N, C, H, W) channels_first) into a new
// (B, C, H, W) tensor of `layout`. What BatchLoader::next uses; also useful for evaluation.
Tensor gather_examples(const Tensor& images, const std::vector<std::int64_t>& indices,
                       Layout layout);

}  // namespace bnorm
