// Oracle 2 of 3 (STYLE.md, habit 6): finite differences. The analytic backward of every
// implementation (the reference included: it is an oracle only because this test checks it)
// against central differences of a scalar loss L = sum_i w_i * y_i, where y is computed by a
// small double-precision forward written here, independently of the kernels. With dy = w,
// backward must return dL/dx, dL/dgamma, dL/dbeta.
//
// Batch statistics: mean and variance are functions of x inside the double forward.
// Frozen statistics: mean and invstd are constants (the same float values the kernel gets).
#include <gtest/gtest.h>

#include <functional>

#include "batchnorm_test_support.hpp"

namespace bnorm::test {
namespace {

struct DoubleParams {
  std::vector<double> x, gamma, beta;  // gamma/beta empty: affine off
};

// y = gamma * (x - mean) * invstd + beta in double. frozen_mean empty: batch statistics.
std::vector<double> forward_double(const BatchNormProblem& p, const DoubleParams& v, double eps,
                                   const std::vector<double>& frozen_mean,
                                   const std::vector<double>& frozen_invstd) {
  const double m = static_cast<double>(p.values_per_channel());
  std::vector<double> y(v.x.size());
  for (std::int64_t c = 0; c < p.channels; ++c) {
    const auto cc = static_cast<std::size_t>(c);
    double mean, invstd;
    if (frozen_mean.empty()) {
      double sum = 0, sq = 0;
      for (std::int64_t n = 0; n < p.batch; ++n)
        for (std::int64_t s = 0; s < p.spatial; ++s) sum += v.x[index_of(p, n, c, s)];
      mean = sum / m;
      for (std::int64_t n = 0; n < p.batch; ++n)
        for (std::int64_t s = 0; s < p.spatial; ++s) {
          const double d = v.x[index_of(p, n, c, s)] - mean;
          sq += d * d;
        }
      invstd = 1.0 / std::sqrt(sq / m + eps);
    } else {
      mean = frozen_mean[cc];
      invstd = frozen_invstd[cc];
    }
    const double g = v.gamma.empty() ? 1.0 : v.gamma[cc];
    const double b = v.beta.empty() ? 0.0 : v.beta[cc];
    for (std::int64_t n = 0; n < p.batch; ++n)
      for (std::int64_t s = 0; s < p.spatial; ++s) {
        const std::size_t i = index_of(p, n, c, s);
        y[i] = g * (v.x[i] - mean) * invstd + b;
      }
  }
  return y;
}

// Central difference of L with respect to every element of `which` (a member of `v`).
std::vector<double> numeric_gradient(const std::function<double(const DoubleParams&)>& loss,
                                     DoubleParams v, std::vector<double> DoubleParams::*which) {
  constexpr double h = 1e-4;  // truncation ~h^2, rounding ~1e-16 / h: both far below 1e-6
  std::vector<double> grad((v.*which).size());
  for (std::size_t i = 0; i < grad.size(); ++i) {
    const double saved = (v.*which)[i];
    (v.*which)[i] = saved + h;
    const double plus = loss(v);
    (v.*which)[i] = saved - h;
    const double minus = loss(v);
    (v.*which)[i] = saved;
    grad[i] = (plus - minus) / (2 * h);
  }
  return grad;
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

::testing::AssertionResult gradient_matches(const char* what, const std::vector<float>& analytic,
                                            const std::vector<double>& numeric) {
  double scale = 1e-6;
  for (double g : numeric) scale = std::max(scale, std::abs(g));
  return all_close(what, analytic, numeric, 1e-4, 1e-4 * scale);
}

class GradCheck : public ::testing::TestWithParam<ImplCase> {
 protected:
  void check(BatchNormStatistics stats) {
    const BatchNormImpl& impl = *GetParam().impl;
    const BatchNormProblem p = GetParam().problem();
    BNORM_REQUIRE_ACCEPTS(impl, p);
    const auto C = static_cast<std::size_t>(p.channels);
    const bool batch = stats == BatchNormStatistics::batch;
    constexpr double eps = 1e-3;
    const std::vector<float> x = random_input(p, 51);
    const std::vector<float> w = random_uniform(x.size(), 52, -1.0f, 1.0f);  // dL/dy
    const std::vector<float> gamma = random_uniform(C, 53, 0.5f, 1.5f);
    const std::vector<float> beta = random_uniform(C, 54, -1.0f, 1.0f);
    const std::vector<float> frozen_mean = random_uniform(C, 55, -1.0f, 1.0f);
    const std::vector<float> frozen_invstd = random_uniform(C, 56, 0.5f, 2.0f);

    for (bool affine : {true, false}) {
      SCOPED_TRACE(affine ? "affine" : "affine off");
      // Analytic, from the implementation under test (forward too, for the batch statistics).
      std::vector<float> mean = frozen_mean, invstd = frozen_invstd;
      std::vector<std::byte> workspace = workspace_for(impl, p);
      if (batch) {
        std::vector<float> y(x.size());
        impl.forward_train({.problem = p, .eps = eps, .x = x.data(),
                            .gamma = affine ? gamma.data() : nullptr,
                            .beta = affine ? beta.data() : nullptr, .y = y.data(),
                            .save_mean = mean.data(), .save_invstd = invstd.data(),
                            .workspace = workspace});
      }
      std::vector<float> dx(x.size()), dgamma(C, 0.0f), dbeta(C, 0.0f);
      impl.backward({.problem = p, .statistics = stats,
                     .mask = {.dx = true, .dgamma = affine, .dbeta = affine},
                     .x = x.data(), .dy = w.data(), .mean = mean.data(), .invstd = invstd.data(),
                     .gamma = affine ? gamma.data() : nullptr, .dx = dx.data(),
                     .dgamma = affine ? dgamma.data() : nullptr,
                     .dbeta = affine ? dbeta.data() : nullptr, .workspace = workspace});

      // Numeric, from the double forward.
      const std::vector<double> fm = batch ? std::vector<double>{} : to_double(frozen_mean);
      const std::vector<double> fi = batch ? std::vector<double>{} : to_double(frozen_invstd);
      auto loss = [&](const DoubleParams& v) {
        const std::vector<double> y = forward_double(p, v, eps, fm, fi);
        double l = 0;
        for (std::size_t i = 0; i < y.size(); ++i) l += w[i] * y[i];
        return l;
      };
      const DoubleParams v{to_double(x), affine ? to_double(gamma) : std::vector<double>{},
                           affine ? to_double(beta) : std::vector<double>{}};
      EXPECT_TRUE(gradient_matches("dx", dx, numeric_gradient(loss, v, &DoubleParams::x)));
      if (affine) {
        EXPECT_TRUE(gradient_matches("dgamma", dgamma, numeric_gradient(loss, v, &DoubleParams::gamma)));
        EXPECT_TRUE(gradient_matches("dbeta", dbeta, numeric_gradient(loss, v, &DoubleParams::beta)));
      }
    }
  }
};

TEST_P(GradCheck, BatchStatistics) { check(BatchNormStatistics::batch); }
TEST_P(GradCheck, FrozenStatistics) { check(BatchNormStatistics::frozen); }

const std::vector<std::string> gradcheck_cases = {
    "n3c2s5:nchw", "n3c2s5:nhwc", "n4c3:nc",         "n1c2s6:nchw",
    "n1c2s6:nhwc", "n2c3h2w2:nhwc", "n2c2d2h1w2:ncdhw", "n2c1s2:nchw",
};
INSTANTIATE_TEST_SUITE_P(Cases, GradCheck, ::testing::ValuesIn(cross(all_impls(), gradcheck_cases)),
                         impl_case_name);

}  // namespace
}  // namespace bnorm::test
