// bnorm/layers/loss.hpp: softmax cross-entropy and accuracy.
//
// loss = mean over the batch of -log softmax(logits)[label], computed with the log-sum-exp
// shift (subtract the row maximum) so that no logit overflows. The gradient with respect to
// the logits is (softmax - onehot(label)) / N.
#pragma once

#include <cstdint>
#include <span>

#include "bnorm/tensor/tensor.hpp"

namespace bnorm {

struct CrossEntropyResult {
  double loss = 0.0;           // mean over the batch
  std::int64_t correct = 0;    // rows whose arg-max is the label (ties: the first maximum)
  Tensor dlogits;              // (N, K), only when requested
};

// logits: (N, K) with N, K >= 1; labels: N values in [0, K) (else std::invalid_argument naming
// the row and the value). Non-finite logits give a NaN loss rather than an error.
CrossEntropyResult softmax_cross_entropy(const Tensor& logits, std::span<const std::int32_t> labels,
                                         bool compute_gradient);

// Row-wise softmax probabilities of (N, K) logits (for `bnorm predict`).
Tensor softmax(const Tensor& logits);

}  // namespace bnorm
