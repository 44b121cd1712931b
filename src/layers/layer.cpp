#include "bnorm/layers/layer.hpp"

#include <algorithm>

#include "bnorm/util/parallel.hpp"

namespace bnorm {

const char* to_string(ParameterRole role) {
  switch (role) {
    case ParameterRole::weight: return "weight";
    case ParameterRole::bias: return "bias";
    case ParameterRole::norm: return "norm";
  }
  return "?";
}

void clear_gradients(const std::vector<ParameterRef>& parameters) {
  std::int64_t total = 0;
  for (const ParameterRef& p : parameters) total += p.grad->numel();
  parallel_threads(total, elementwise_min_parallel, [&](int t, int threads) {
    for (const ParameterRef& p : parameters) {
      const IndexRange r = static_range(p.grad->numel(), t, threads);
      std::fill(p.grad->data_f32() + r.begin, p.grad->data_f32() + r.end, 0.0f);
    }
  });
}

void Layer::zero_grad() { clear_gradients(parameters()); }

std::int64_t Layer::parameter_count() {
  std::int64_t total = 0;
  for (const ParameterRef& p : parameters()) total += p.value->numel();
  return total;
}

}  // namespace bnorm
