// The reference batch-normalization kernels: plain loops, double accumulation, two passes.
// They are the oracle that every fast implementation is tested against, so they favour
// being obviously right over being fast. Not for production use.
#pragma once

#include "bnorm/kernels/batchnorm.hpp"

namespace bnorm::reference {

extern const BatchNormImpl batchnorm_impl;

void batchnorm_forward_train(const BatchNormForwardTrainArgs& args);
void batchnorm_forward_infer(const BatchNormForwardInferArgs& args);
void batchnorm_backward(const BatchNormBackwardArgs& args);
void batchnorm_moments(const BatchNormProblem& problem, const float* x, ChannelMoments out,
                       std::span<std::byte> workspace);  // needs none

// Offset of element (n, c, s) in the problem's layout.
inline std::int64_t element_offset(const BatchNormProblem& p, std::int64_t n, std::int64_t c,
                                   std::int64_t s) {
  return p.layout == Layout::channels_first ? (n * p.channels + c) * p.spatial + s
                                            : (n * p.spatial + s) * p.channels + c;
}

}  // namespace bnorm::reference
