// Softmax cross-entropy and softmax over (N, K) logits (loss.hpp). Each row is shifted by its
// maximum before exponentiating (log-sum-exp), and sums run in double, so logits of any finite
// size give a finite loss. Batches are small (N x classes), so the loops are serial and the
// result does not depend on the thread count.
#include "bnorm/layers/loss.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace bnorm {
namespace {

void check_logits(const char* who, const Tensor& logits) {
  if (!logits.defined()) throw std::invalid_argument(std::string(who) + ": logits are an undefined tensor");
  if (logits.rank() != 2 || logits.dim(0) < 1 || logits.dim(1) < 1)
    throw std::invalid_argument(std::string(who) + ": logits must be (N, K) with N, K >= 1, got " +
                                logits.describe());
  if (logits.dtype() != DType::f32 || logits.device() != Device::cpu)
    throw std::invalid_argument(std::string(who) + ": logits must be f32 on the cpu, got " +
                                logits.describe());
}

// max_j z_j and log sum_j exp(z_j - max): log softmax(z)_j = z_j - max - log_sum.
struct RowShift {
  float max;
  double log_sum;
};

RowShift row_shift(const float* z, std::int64_t k) {
  float m = z[0];
  for (std::int64_t j = 1; j < k; ++j) m = z[j] > m ? z[j] : m;
  double sum = 0.0;
  for (std::int64_t j = 0; j < k; ++j) sum += std::exp(static_cast<double>(z[j]) - m);
  return {m, std::log(sum)};
}

}  // namespace

CrossEntropyResult softmax_cross_entropy(const Tensor& logits, std::span<const std::int32_t> labels,
                                         bool compute_gradient) {
  check_logits("softmax_cross_entropy", logits);
  const std::int64_t n = logits.dim(0), k = logits.dim(1);
  if (static_cast<std::int64_t>(labels.size()) != n)
    throw std::invalid_argument("softmax_cross_entropy: " + std::to_string(labels.size()) +
                                " labels for logits " + logits.describe() + "; expected " +
                                std::to_string(n));
  for (std::int64_t i = 0; i < n; ++i)
    if (labels[i] < 0 || labels[i] >= k)
      throw std::invalid_argument("softmax_cross_entropy: label " + std::to_string(labels[i]) +
                                  " in row " + std::to_string(i) + " is outside [0, " +
                                  std::to_string(k) + ") for logits " + logits.describe());

  CrossEntropyResult result;
  if (compute_gradient) result.dlogits = Tensor::empty(logits.shape());
  const float* z_all = logits.data_f32();
  double total = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const float* z = z_all + i * k;
    const std::int32_t label = labels[i];
    const RowShift shift = row_shift(z, k);
    // -log softmax(z)[label] = max + log_sum - z[label]
    total += shift.max + shift.log_sum - z[label];

    std::int64_t arg_max = 0;  // the first maximum
    for (std::int64_t j = 1; j < k; ++j)
      if (z[j] > z[arg_max]) arg_max = j;
    result.correct += arg_max == label;

    if (compute_gradient) {
      // d loss / d z_j = (softmax(z)_j - [j == label]) / N
      float* g = result.dlogits.data_f32() + i * k;
      for (std::int64_t j = 0; j < k; ++j) {
        const double p = std::exp(static_cast<double>(z[j]) - shift.max - shift.log_sum);
        g[j] = static_cast<float>((p - (j == label ? 1.0 : 0.0)) / static_cast<double>(n));
      }
    }
  }
  result.loss = total / static_cast<double>(n);
  return result;
}

Tensor softmax(const Tensor& logits) {
  check_logits("softmax", logits);
  const std::int64_t n = logits.dim(0), k = logits.dim(1);
  Tensor probabilities = Tensor::empty(logits.shape());
  for (std::int64_t i = 0; i < n; ++i) {
    const float* z = logits.data_f32() + i * k;
    float* p = probabilities.data_f32() + i * k;
    const RowShift shift = row_shift(z, k);
    for (std::int64_t j = 0; j < k; ++j)
      p[j] = static_cast<float>(std::exp(static_cast<double>(z[j]) - shift.max - shift.log_sum));
  }
  return probabilities;
}

}  // namespace bnorm
