// Element-wise activations (bnorm/kernels/activation.hpp). The loops are plain C++ that the
// compiler vectorizes; target_clones compiles each for AVX-512, AVX2 and the baseline, and the
// loader picks the widest the CPU has. Sigmoid evaluates e^-|x| with exp_vectorizable, which
// is what makes it vectorize: a call to std::exp per element was 4x the cost of the
// 60x100x100 matrix product next to it in mlp-paper.
#include "bnorm/kernels/activation.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include "bnorm/util/parallel.hpp"

namespace bnorm::kernels {
namespace {

#define BNORM_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// Cephes expf: e^x = 2^k e^r with k = round(x / ln 2) and r = x - k ln 2 in [-ln2/2, ln2/2]
// (ln 2 split in two constants so that k ln 2 is exact), e^r by a degree-6 polynomial, and
// 2^k as the product of two powers built in the exponent bits: one alone would overflow at
// k = 128 (x near 88.7) and could not reach the denormals (k < -126).
inline float two_to(std::int32_t k) { return std::bit_cast<float>((k + 127) << 23); }  // |k| <= 127

inline float exp_inline(float x) {
  constexpr float max_input = 88.72283f;   // ln(FLT_MAX): above, e^x overflows to inf
  constexpr float min_input = -103.9721f;  // below, e^x rounds to 0 (denormals end at 2^-149)
  const float clamped = std::min(std::max(x, min_input), max_input);
  // Round to nearest by the 1.5 * 2^23 trick: adding it leaves the integer in the low bits.
  constexpr float shifter = 12582912.0f;
  const float shifted = clamped * 1.44269504088896341f + shifter;
  const float k = shifted - shifter;
  const std::int32_t k_int = std::bit_cast<std::int32_t>(shifted) - std::bit_cast<std::int32_t>(shifter);
  const float r = (clamped - k * 0.693359375f) - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const std::int32_t half_k = k_int >> 1;  // floor(k / 2), so both factors are normal floats
  const float scaled = (p * two_to(half_k)) * two_to(k_int - half_k);
  // Out of range: 0 below, inf above; NaN compares false both ways and is passed through.
  const float low_or_scaled = x < min_input ? 0.0f : scaled;
  return x > max_input ? INFINITY : (x != x ? x : low_or_scaled);
}

// 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) for x < 0: with e = e^-|x| <= 1 neither form
// overflows, and both tails round to exactly 0 or 1 instead of NaN. NaN stays NaN.
inline float sigmoid_inline(float x) {
  const float e = exp_inline(-std::abs(x));
  return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}

// The loops over one range, one clone per ISA. They hold no OpenMP region: its outlined body
// would be compiled for the baseline ISA, not for the clone's.
BNORM_CPU_CLONES void relu_forward(const float* x, float* y, std::int64_t n) {
  // std::max returns its first argument when unordered, so NaN stays NaN.
  for (std::int64_t i = 0; i < n; ++i) y[i] = std::max(x[i], 0.0f);
}
BNORM_CPU_CLONES void sigmoid_forward(const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = sigmoid_inline(x[i]);
}
// std::tanh: 1 - 2/(e^2x + 1) from exp_inline would lose the relative accuracy of small |x|.
void tanh_forward(const float* x, float* y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

BNORM_CPU_CLONES void relu_backward(const float* y, const float* dy, float* dx, std::int64_t n) {
  // relu'(x) = [y > 0]: 0 at the kink, as in PyTorch.
  for (std::int64_t i = 0; i < n; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
BNORM_CPU_CLONES void sigmoid_backward(const float* y, const float* dy, float* dx, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
}
BNORM_CPU_CLONES void tanh_backward(const float* y, const float* dy, float* dx, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
}

}  // namespace

float exp_vectorizable(float x) { return exp_inline(x); }

void activation_forward(ActivationKind kind, const float* x, float* y, std::int64_t n) {
  auto loop = kind == ActivationKind::relu ? relu_forward : kind == ActivationKind::sigmoid ? sigmoid_forward : tanh_forward;
  parallel_elementwise(n, [&](std::int64_t begin, std::int64_t end) { loop(x + begin, y + begin, end - begin); });
}

void activation_backward(ActivationKind kind, const float* y, const float* dy, float* dx, std::int64_t n) {
  auto loop = kind == ActivationKind::relu ? relu_backward : kind == ActivationKind::sigmoid ? sigmoid_backward : tanh_backward;
  parallel_elementwise(n, [&](std::int64_t begin, std::int64_t end) {
    loop(y + begin, dy + begin, dx + begin, end - begin);
  });
}

}  // namespace bnorm::kernels
