// Reference batch normalization. Each function follows the derivation in
// docs/batchnorm-math.md; comments give the formula each loop computes.
#include "kernels/reference/batchnorm_reference.hpp"

#include <cmath>
#include <vector>

namespace bnorm::reference {
namespace {

// Visits the m = N*S values of channel c in a fixed order (n outer, s inner).
template <typename F>
void for_each_in_channel(const BatchNormProblem& p, std::int64_t c, F&& f) {
  for (std::int64_t n = 0; n < p.batch; ++n)
    for (std::int64_t s = 0; s < p.spatial; ++s) f(element_offset(p, n, c, s));
}

struct ChannelMeanM2 {
  double mean;
  double m2;  // sum (x - mean)^2
};

// Two passes in double: mean first, then squared deviations from it. Exact up to double
// rounding for any float32 input, whatever its offset.
ChannelMeanM2 channel_mean_m2(const BatchNormProblem& p, const float* x, std::int64_t c) {
  const double m = static_cast<double>(p.values_per_channel());
  double sum = 0.0;
  for_each_in_channel(p, c, [&](std::int64_t i) { sum += x[i]; });
  const double mean = sum / m;
  double m2 = 0.0;
  for_each_in_channel(p, c, [&](std::int64_t i) {
    const double d = x[i] - mean;
    m2 += d * d;
  });
  return {mean, m2};
}

}  // namespace

void batchnorm_moments(const BatchNormProblem& p, const float* x, ChannelMoments out,
                       std::span<std::byte>) {
  out.count = p.values_per_channel();
  for (std::int64_t c = 0; c < p.channels; ++c) {
    const ChannelMeanM2 s = channel_mean_m2(p, x, c);
    out.mean[c] = s.mean;
    out.m2[c] = s.m2;
  }
}

void batchnorm_forward_train(const BatchNormForwardTrainArgs& a) {
  const BatchNormProblem& p = a.problem;
  const double m = static_cast<double>(p.values_per_channel());
  for (std::int64_t c = 0; c < p.channels; ++c) {
    const ChannelMeanM2 s = channel_mean_m2(p, a.x, c);
    const double var = s.m2 / m;                        // biased: used to normalize
    const double invstd = 1.0 / std::sqrt(var + a.eps);
    const double gamma = a.gamma ? a.gamma[c] : 1.0;
    const double beta = a.beta ? a.beta[c] : 0.0;
    // Read every input of the channel before writing any output: y may alias x.
    for_each_in_channel(p, c, [&](std::int64_t i) {
      const double xhat = (a.x[i] - s.mean) * invstd;  // y = gamma * xhat + beta
      a.y[i] = static_cast<float>(gamma * xhat + beta);
    });
    a.save_mean[c] = static_cast<float>(s.mean);
    a.save_invstd[c] = static_cast<float>(invstd);
    if (a.running.mean) {
      // running = (1 - f) * running + f * batch; the variance stored is unbiased: m/(m-1).
      const double f = a.running.factor;
      const double unbiased = s.m2 / (m - 1.0);
      a.running.mean[c] = static_cast<float>((1.0 - f) * a.running.mean[c] + f * s.mean);
      a.running.var[c] = static_cast<float>((1.0 - f) * a.running.var[c] + f * unbiased);
    }
  }
}

void batchnorm_forward_infer(const BatchNormForwardInferArgs& a) {
  const BatchNormProblem& p = a.problem;
  for (std::int64_t c = 0; c < p.channels; ++c) {
    const double invstd =
        a.var ? 1.0 / std::sqrt(static_cast<double>(a.var[c]) + a.eps) : a.invstd[c];
    const double gamma = a.gamma ? a.gamma[c] : 1.0;
    const double beta = a.beta ? a.beta[c] : 0.0;
    for_each_in_channel(p, c, [&](std::int64_t i) {
      a.y[i] = static_cast<float>(gamma * (a.x[i] - a.mean[c]) * invstd + beta);
    });
  }
}

void batchnorm_backward(const BatchNormBackwardArgs& a) {
  const BatchNormProblem& p = a.problem;
  const double m = static_cast<double>(p.values_per_channel());
  for (std::int64_t c = 0; c < p.channels; ++c) {
    const double mean = a.mean[c];
    const double invstd = a.invstd[c];
    const double gamma = a.gamma ? a.gamma[c] : 1.0;
    // sum_dy = dL/dbeta; sum_dy_xhat = dL/dgamma.
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for_each_in_channel(p, c, [&](std::int64_t i) {
      sum_dy += a.dy[i];
      sum_dy_xhat += a.dy[i] * (a.x[i] - mean) * invstd;
    });
    if (a.mask.dx) {
      for_each_in_channel(p, c, [&](std::int64_t i) {
        const double dy = a.dy[i];
        if (a.statistics == BatchNormStatistics::frozen) {
          // mean and invstd are constants: dx = gamma * invstd * dy.
          a.dx[i] = static_cast<float>(gamma * invstd * dy);
        } else {
          // dL/dxhat = gamma * dy; through the batch mean and variance (paper, sec. 3):
          // dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)).
          const double xhat = (a.x[i] - mean) * invstd;
          a.dx[i] = static_cast<float>(gamma * invstd *
                                       (dy - sum_dy / m - xhat * sum_dy_xhat / m));
        }
      });
    }
    if (a.mask.dgamma && a.dgamma) a.dgamma[c] += static_cast<float>(sum_dy_xhat);
    if (a.mask.dbeta && a.dbeta) a.dbeta[c] += static_cast<float>(sum_dy);
  }
}

const BatchNormImpl batchnorm_impl = {
    .name = "reference",
    .declines = [](const BatchNormProblem&) -> const char* { return nullptr; },
    .workspace_bytes = [](const BatchNormProblem&) -> std::size_t { return 0; },
    .forward_train = batchnorm_forward_train,
    .forward_infer = batchnorm_forward_infer,
    .backward = batchnorm_backward,
    .moments = batchnorm_moments,
};

}  // namespace bnorm::reference
