// Results must not depend on the number of threads (bnorm/kernels/batchnorm.hpp: every
// reduction has a fixed order). Each fast implementation runs every op with 1, 2 and 3 OpenMP
// threads on cases big enough to be split across threads; the outputs must be bitwise equal.
//
// Under BNORM_TESTS_SMALL (Debug and sanitizer builds, see tests/CMakeLists.txt) the cases
// shrink but stay larger than one thread's share of work.
#include <gtest/gtest.h>
#include <omp.h>

#include <array>
#include <cstring>

#include "batchnorm_test_support.hpp"

namespace bnorm::test {
namespace {

#if defined(BNORM_TESTS_SMALL) && BNORM_TESTS_SMALL
const std::vector<std::string> thread_cases = {
    "n8c64s784:nchw", "n8c64s784:nhwc", "n256c256:nc", "n2c1s65536:nchw", "n65536c1:nc",
    "n4c3s5000:nhwc", "n16c52s49:nchw", "n40c13s64:nchw", "n8c203s49:nhwc",
};
#else
const std::vector<std::string> thread_cases = {
    "n32c64s3136:nchw", "n32c64s3136:nhwc", "n1024c1024:nc", "n4c1s262144:nchw",
    "n1048576c1:nc",    "n16c3s50176:nhwc", "n8c512s49:nchw", "n256c64s64:nchw",
    "n35c37s100:nchw",  "n20c203s49:nhwc",
};
#endif

// Everything every op writes, for one thread count.
struct AllOutputs {
  std::vector<float> y, save_mean, save_invstd, running_mean, running_var, y_infer_var,
      y_infer_invstd, dx_batch, dgamma_batch, dbeta_batch, dx_frozen, dgamma_frozen, dbeta_frozen;
  std::vector<double> moments_mean, moments_m2;
};

AllOutputs run_every_op(const BatchNormImpl& impl, const BatchNormProblem& p,
                        const std::vector<float>& x, const std::vector<float>& dy,
                        const std::vector<float>& gamma, const std::vector<float>& beta) {
  const auto C = static_cast<std::size_t>(p.channels);
  const std::size_t n = x.size();
  AllOutputs o;
  o.y.resize(n);
  o.save_mean.resize(C);
  o.save_invstd.resize(C);
  o.running_mean.assign(C, 0.25f);
  o.running_var.assign(C, 2.0f);
  std::vector<std::byte> workspace = workspace_for(impl, p);
  impl.forward_train({.problem = p, .x = x.data(), .gamma = gamma.data(), .beta = beta.data(),
                      .y = o.y.data(), .save_mean = o.save_mean.data(),
                      .save_invstd = o.save_invstd.data(),
                      .running = {.mean = o.running_mean.data(), .var = o.running_var.data(),
                                  .factor = 0.1},
                      .workspace = workspace});
  o.y_infer_var.resize(n);
  impl.forward_infer({.problem = p, .x = x.data(), .mean = o.running_mean.data(),
                      .var = o.running_var.data(), .gamma = gamma.data(), .beta = beta.data(),
                      .y = o.y_infer_var.data()});
  o.y_infer_invstd.resize(n);
  impl.forward_infer({.problem = p, .x = x.data(), .mean = o.save_mean.data(),
                      .invstd = o.save_invstd.data(), .y = o.y_infer_invstd.data()});
  for (BatchNormStatistics stats : {BatchNormStatistics::batch, BatchNormStatistics::frozen}) {
    const bool batch = stats == BatchNormStatistics::batch;
    std::vector<float>& dx = batch ? o.dx_batch : o.dx_frozen;
    std::vector<float>& dgamma = batch ? o.dgamma_batch : o.dgamma_frozen;
    std::vector<float>& dbeta = batch ? o.dbeta_batch : o.dbeta_frozen;
    dx.resize(n);
    dgamma.assign(C, 1.0f);
    dbeta.assign(C, -1.0f);
    impl.backward({.problem = p, .statistics = stats, .x = x.data(), .dy = dy.data(),
                   .mean = o.save_mean.data(), .invstd = o.save_invstd.data(),
                   .gamma = gamma.data(), .dx = dx.data(), .dgamma = dgamma.data(),
                   .dbeta = dbeta.data(), .workspace = workspace});
  }
  o.moments_mean.resize(C);
  o.moments_m2.resize(C);
  impl.moments(p, x.data(), {.count = 0, .mean = o.moments_mean.data(), .m2 = o.moments_m2.data()},
               workspace);
  return o;
}

::testing::AssertionResult bitwise_equal_doubles(const char* what, const std::vector<double>& a,
                                                 const std::vector<double>& b) {
  if (a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << " differs";
}

class ThreadCountIndependence : public ::testing::TestWithParam<ImplCase> {};

TEST_P(ThreadCountIndependence, EveryOpIsBitwiseIdentical) {
  const BatchNormImpl& impl = *GetParam().impl;
  const BatchNormProblem p = GetParam().problem();
  BNORM_REQUIRE_ACCEPTS(impl, p);
  const auto C = static_cast<std::size_t>(p.channels);
  std::vector<float> x = random_input(p, 1);
  // Every fourth channel's pivot is poor: its re-sum (channels_last: the group's) runs too.
  for (std::int64_t c = 1; c < p.channels; c += 4) put_pivots_far(p, x, c, 1e3f);
  const std::vector<float> dy = random_uniform(x.size(), 2, -1.0f, 1.0f);
  const std::vector<float> gamma = random_uniform(C, 3, 0.5f, 1.5f);
  const std::vector<float> beta = random_uniform(C, 4, -1.0f, 1.0f);

  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const AllOutputs one = run_every_op(impl, p, x, dy, gamma, beta);
  for (int threads : {2, 3}) {
    SCOPED_TRACE(std::to_string(threads) + " threads");
    omp_set_num_threads(threads);
    const AllOutputs many = run_every_op(impl, p, x, dy, gamma, beta);
    EXPECT_TRUE(bitwise_equal("forward_train y", many.y, one.y));
    EXPECT_TRUE(bitwise_equal("save_mean", many.save_mean, one.save_mean));
    EXPECT_TRUE(bitwise_equal("save_invstd", many.save_invstd, one.save_invstd));
    EXPECT_TRUE(bitwise_equal("running_mean", many.running_mean, one.running_mean));
    EXPECT_TRUE(bitwise_equal("running_var", many.running_var, one.running_var));
    EXPECT_TRUE(bitwise_equal("forward_infer y (var)", many.y_infer_var, one.y_infer_var));
    EXPECT_TRUE(bitwise_equal("forward_infer y (invstd)", many.y_infer_invstd, one.y_infer_invstd));
    EXPECT_TRUE(bitwise_equal("dx (batch)", many.dx_batch, one.dx_batch));
    EXPECT_TRUE(bitwise_equal("dgamma (batch)", many.dgamma_batch, one.dgamma_batch));
    EXPECT_TRUE(bitwise_equal("dbeta (batch)", many.dbeta_batch, one.dbeta_batch));
    EXPECT_TRUE(bitwise_equal("dx (frozen)", many.dx_frozen, one.dx_frozen));
    EXPECT_TRUE(bitwise_equal("dgamma (frozen)", many.dgamma_frozen, one.dgamma_frozen));
    EXPECT_TRUE(bitwise_equal("dbeta (frozen)", many.dbeta_frozen, one.dbeta_frozen));
    EXPECT_TRUE(bitwise_equal_doubles("moments.mean", many.moments_mean, one.moments_mean));
    EXPECT_TRUE(bitwise_equal_doubles("moments.m2", many.moments_m2, one.moments_m2));
  }
  omp_set_num_threads(saved_threads);
}

INSTANTIATE_TEST_SUITE_P(BigCases, ThreadCountIndependence,
                         ::testing::ValuesIn(cross(fast_impls(), thread_cases)), impl_case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ThreadCountIndependence);

}  // namespace
}  // namespace bnorm::test
