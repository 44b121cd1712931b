// PLACEHOLDER while the fast kernels are written: declines every problem, so the
// reference runs. Replaced by the real implementation.
#include "kernels/cpu/batchnorm_cpu.hpp"

namespace bnorm::cpu {
const BatchNormImpl batchnorm_impl_avx2 = {
    .name = "cpu_avx2",
    .declines = [](const BatchNormProblem&) -> const char* { return "not implemented yet"; },
    .workspace_bytes = [](const BatchNormProblem&) -> std::size_t { return 0; },
    .forward_train = nullptr,
    .forward_infer = nullptr,
    .backward = nullptr,
    .moments = nullptr,
};
}  // namespace bnorm::cpu
