#include "bnorm/layers/layer.hpp"

#include <cstring>

namespace bnorm {

const char* to_string(ParameterRole role) {
  switch (role) {
    case ParameterRole::weight: return "weight";
    case ParameterRole::bias: return "bias";
    case ParameterRole::norm: return "norm";
  }
  return "?";
}

void Layer::zero_grad() {
  for (ParameterRef& p : parameters()) std::memset(p.grad->data_f32(), 0, p.grad->nbytes());
}

std::int64_t Layer::parameter_count() {
  std::int64_t total = 0;
  for (const ParameterRef& p : parameters()) total += p.value->numel();
  return total;
}

}  // namespace bnorm
