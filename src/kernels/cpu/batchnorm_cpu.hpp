// Fast CPU batch normalization: one algorithm, instantiated for a vector width.
// batchnorm_impl_avx2 needs AVX2 and FMA (checked at run time, see cpu_features.hpp);
// batchnorm_impl_scalar runs anywhere. Both are multi-threaded with OpenMP and give
// bitwise-identical results whatever the thread count.
#pragma once

#include "bnorm/kernels/batchnorm.hpp"

namespace bnorm::cpu {

extern const BatchNormImpl batchnorm_impl_avx2;
extern const BatchNormImpl batchnorm_impl_scalar;

}  // namespace bnorm::cpu
