// bnorm/train/evaluate.hpp: loss and accuracy of a network on a labelled data set.
//
// The network runs in eval mode, in batches. With BnStatistics::running (the normal case)
// BatchNorm uses its running estimates; with BnStatistics::batch every BatchNorm normalizes
// with the statistics of the evaluation batch instead (what a network without running
// estimates would do; results then depend on the batch size). The running statistics are left
// exactly as they were either way.
#pragma once

#include <cstdint>

#include "bnorm/data/dataset.hpp"
#include "bnorm/layers/sequential.hpp"

namespace bnorm {

enum class BnStatistics : std::uint8_t { running, batch };
BnStatistics parse_bn_statistics(const std::string& name);  // "running" / "batch"

struct EvalResult {
  double loss = 0.0;      // mean softmax cross-entropy
  double accuracy = 0.0;  // fraction correct
  std::int64_t examples = 0;
};

struct EvalOptions {
  std::int64_t batch_size = 500;
  BnStatistics bn_statistics = BnStatistics::running;
  Layout layout = Layout::channels_first;  // the network's input layout
};

// `data` must already be standardized as the network expects.
EvalResult evaluate(Sequential& net, const Dataset& data, const EvalOptions& options = {});

}  // namespace bnorm
