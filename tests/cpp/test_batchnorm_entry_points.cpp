// The entry points of bnorm/kernels/batchnorm.hpp: the problem descriptor and its string,
// the running-average factor, argument checks (each error names the problem), the ordered
// implementation list and the workspace query.
#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <span>

#include "batchnorm_test_support.hpp"

namespace bnorm::test {
namespace {

TEST(BatchNormProblem, FromShapeOfEveryRank) {
  const BatchNormProblem p2 = BatchNormProblem::from_shape({8, 3}, Layout::channels_first);
  EXPECT_EQ(p2.batch, 8);
  EXPECT_EQ(p2.channels, 3);
  EXPECT_EQ(p2.spatial, 1);
  EXPECT_EQ(BatchNormProblem::from_shape({8, 3, 7}, Layout::channels_last).spatial, 7);
  EXPECT_EQ(BatchNormProblem::from_shape({8, 3, 5, 6}, Layout::channels_first).spatial, 30);
  const BatchNormProblem p5 = BatchNormProblem::from_shape({2, 3, 4, 5, 6}, Layout::channels_last);
  EXPECT_EQ(p5.spatial, 120);
  EXPECT_EQ(p5.layout, Layout::channels_last);
  EXPECT_EQ(p5.values_per_channel(), 240);
  EXPECT_EQ(p5.numel(), 720);
  const std::string what = thrown_message<std::invalid_argument>(
      [] { BatchNormProblem::from_shape(Shape{5}, Layout::channels_first); });
  EXPECT_NE(what.find("(5)"), std::string::npos) << what;
}

TEST(BatchNormProblem, ParseAcceptsEverySpellingAndRejectsTheRestWithTheText) {
  EXPECT_EQ(BatchNormProblem::parse("n32c64h56w56:nhwc"), BatchNormProblem::parse("n32c64s3136:nhwc"));
  EXPECT_EQ(BatchNormProblem::parse("n8c3l7:nlc"),
            (BatchNormProblem{.batch = 8, .channels = 3, .spatial = 7, .layout = Layout::channels_last}));
  EXPECT_EQ(BatchNormProblem::parse("n4c5"), BatchNormProblem::parse("n4c5s1:nchw"));
  EXPECT_NE(BatchNormProblem::parse("n4c5s6:nchw"), BatchNormProblem::parse("n4c5s6:nhwc"));
  for (const char* text : {"", "n4", "c4n2", "n4c5x3", "n4c5s", "n4c0s3", "n4c5s3:nwhc",
                           "n4c5w3h2", "n-1c5"}) {
    const std::string what = thrown_message<std::invalid_argument>(
        [&] { BatchNormProblem::parse(text); });
    EXPECT_NE(what.find(std::string("'") + text + "'"), std::string::npos) << text << ": " << what;
  }
  // The bench's JSON spelling is not a problem string: the error names the first bad key.
  const std::string what = thrown_message<std::invalid_argument>(
      [] { BatchNormProblem::parse("60x100"); });
  EXPECT_NE(what.find("unknown key '6'"), std::string::npos) << what;
}

TEST(BatchNormProblem, StringsFollowTheSharedGrammar) {
  EXPECT_EQ(parse_problem("n32c64s3136:nhwc").to_string(), "n32c64s3136:nhwc");
  EXPECT_EQ(parse_problem("n32c64h56w56:nchw").to_string(), "n32c64s3136:nchw");
  EXPECT_EQ(parse_problem("n2c3d4h5w6:ndhwc").to_string(), "n2c3s120:nhwc");
  EXPECT_EQ(parse_problem("n1024c1024:nc").to_string(), "n1024c1024s1:nc");
  for (const std::string& text : kernel_cases()) {
    const BatchNormProblem p = parse_problem(text);
    EXPECT_GE(p.batch, 1) << text;
    EXPECT_GE(p.channels, 1) << text;
    const BatchNormProblem q = parse_problem(p.to_string());
    EXPECT_EQ(q.to_string(), p.to_string()) << text;
  }
}

TEST(RunningAverageFactor, MomentumOrCumulative) {
  EXPECT_EQ(running_average_factor(0.1, 7), 0.1);
  EXPECT_EQ(running_average_factor(std::nullopt, 1), 1.0);
  EXPECT_EQ(running_average_factor(std::nullopt, 4), 0.25);
  EXPECT_THROW(running_average_factor(std::nullopt, 0), std::invalid_argument);
}

TEST(OutputStores, NamesRoundTripAndOthersAreRejectedWithTheChoices) {
  for (OutputStores stores : {OutputStores::automatic, OutputStores::cached, OutputStores::streaming})
    EXPECT_EQ(parse_output_stores(output_stores_name(stores)), stores);
  EXPECT_EQ(output_stores_name(OutputStores::streaming), "streaming");
  const std::string message =
      thrown_message<std::invalid_argument>([] { parse_output_stores("Streaming"); });
  EXPECT_NE(message.find("'Streaming'"), std::string::npos) << message;
  EXPECT_NE(message.find("(one of automatic, cached, streaming)"), std::string::npos) << message;
}

TEST(Implementations, OrderedListWithTheReferenceLast) {
  const auto impls = batchnorm_implementations();
  ASSERT_FALSE(impls.empty());
  EXPECT_STREQ(impls.back().name, "reference");
  std::set<std::string> names;
  for (const BatchNormImpl& impl : impls) {
    EXPECT_TRUE(names.insert(impl.name).second) << "duplicate " << impl.name;
    EXPECT_EQ(batchnorm_impl_by_name(impl.name).forward_train, impl.forward_train) << impl.name;
    // An implementation that accepts a problem must provide every op.
    const BatchNormProblem p = parse_problem("n2c3s4:nchw");
    if (!impl.declines(p)) {
      EXPECT_NE(impl.forward_train, nullptr) << impl.name;
      EXPECT_NE(impl.forward_infer, nullptr) << impl.name;
      EXPECT_NE(impl.backward, nullptr) << impl.name;
      EXPECT_NE(impl.moments, nullptr) << impl.name;
    }
  }
  EXPECT_TRUE(names.count("cpu_scalar"));
  EXPECT_TRUE(names.count("cpu_avx2"));
  const std::string what = thrown_message<std::invalid_argument>([] { batchnorm_impl_by_name("nope"); });
  EXPECT_NE(what.find("nope"), std::string::npos) << what;
  EXPECT_NE(what.find("reference"), std::string::npos) << what;
}

TEST(Implementations, WorkspaceCoversEveryAcceptingImplementation) {
  for (const std::string& text : kernel_cases()) {
    const BatchNormProblem p = parse_problem(text);
    const std::size_t bytes = batchnorm_workspace_bytes(p);
    for (const BatchNormImpl& impl : batchnorm_implementations())
      if (!impl.declines(p)) {
        EXPECT_GE(bytes, impl.workspace_bytes(p)) << impl.name << " " << text;
      }
    EXPECT_FALSE(batchnorm_select(p).declines(p)) << text;
  }
}

// ---- Argument checks: every message names the problem.
class EntryPointChecks : public ::testing::Test {
 protected:
  BatchNormProblem p = parse_problem("n2c3s4:nhwc");
  std::vector<float> x = random_uniform(24, 1, -1.0f, 1.0f), y = std::vector<float>(24),
                     c3 = std::vector<float>(3, 1.0f), c3b = std::vector<float>(3, 1.0f);
  std::vector<std::byte> workspace = std::vector<std::byte>(batchnorm_workspace_bytes(p));
  BatchNormForwardTrainArgs train() {
    return {.problem = p, .x = x.data(), .y = y.data(), .save_mean = c3.data(),
            .save_invstd = c3b.data(), .workspace = workspace};
  }
  void expect_error(const std::function<void()>& f, const std::string& mentions) {
    const std::string what = thrown_message<std::invalid_argument>(f);
    EXPECT_NE(what.find("n2c3s4:nhwc"), std::string::npos) << what;
    EXPECT_NE(what.find(mentions), std::string::npos) << what;
  }
};

TEST_F(EntryPointChecks, ForwardTrain) {
  EXPECT_NO_THROW(batchnorm_forward_train(train()));
  auto a = train();
  a.x = nullptr;
  expect_error([&] { batchnorm_forward_train(a); }, "x is null");
  a = train();
  a.save_invstd = nullptr;
  expect_error([&] { batchnorm_forward_train(a); }, "save_invstd");
  a = train();
  a.gamma = c3.data();
  expect_error([&] { batchnorm_forward_train(a); }, "gamma and beta");
  a = train();
  a.running.mean = c3.data();
  expect_error([&] { batchnorm_forward_train(a); }, "running.var");
  a = train();
  a.eps = -1;
  expect_error([&] { batchnorm_forward_train(a); }, "eps");
  a = train();
  a.problem.batch = 0;
  const std::string what = thrown_message<std::invalid_argument>([&] { batchnorm_forward_train(a); });
  EXPECT_NE(what.find("N=0"), std::string::npos) << what;
  // The implementation that runs checks its own need (batchnorm_workspace_bytes is the
  // largest need of any implementation, so it may be more).
  if (const std::size_t need = batchnorm_select(p).workspace_bytes(p); need > 0) {
    a = train();
    a.workspace = std::span<std::byte>(workspace).first(need - 1);
    expect_error([&] { batchnorm_forward_train(a); }, "workspace");
  }
}

TEST_F(EntryPointChecks, ForwardInfer) {
  BatchNormForwardInferArgs a{.problem = p, .x = x.data(), .mean = c3.data(), .var = c3b.data(),
                              .y = y.data()};
  EXPECT_NO_THROW(batchnorm_forward_infer(a));
  a.invstd = c3.data();
  expect_error([&] { batchnorm_forward_infer(a); }, "exactly one of var and invstd");
  a.var = nullptr;
  EXPECT_NO_THROW(batchnorm_forward_infer(a));
  a.invstd = nullptr;
  expect_error([&] { batchnorm_forward_infer(a); }, "exactly one of var and invstd");
  a.var = c3b.data();
  a.beta = c3.data();
  expect_error([&] { batchnorm_forward_infer(a); }, "gamma and beta");
}

TEST_F(EntryPointChecks, Backward) {
  std::vector<float> dx(24), dg(3, 0.0f), db(3, 0.0f);
  BatchNormBackwardArgs a{.problem = p, .x = x.data(), .dy = x.data(), .mean = c3.data(),
                          .invstd = c3b.data(), .dx = dx.data(), .dgamma = dg.data(),
                          .dbeta = db.data(), .workspace = workspace};
  EXPECT_NO_THROW(batchnorm_backward(a));
  a.dgamma = nullptr;
  expect_error([&] { batchnorm_backward(a); }, "dgamma");
  a.mask.dgamma = false;  // not needed: null is fine
  EXPECT_NO_THROW(batchnorm_backward(a));
  a.dy = nullptr;
  expect_error([&] { batchnorm_backward(a); }, "dy is null");
}

TEST_F(EntryPointChecks, Moments) {
  std::vector<double> mean(3), m2(3);
  ChannelMoments out{.count = 0, .mean = mean.data(), .m2 = m2.data()};
  EXPECT_NO_THROW(batchnorm_moments(p, x.data(), out, workspace));
  EXPECT_EQ(out.count, 8);
  expect_error([&] { batchnorm_moments(p, nullptr, out, workspace); }, "x is null");
  ChannelMoments no_m2{.count = 0, .mean = mean.data(), .m2 = nullptr};
  expect_error([&] { batchnorm_moments(p, x.data(), no_m2, workspace); }, "moments.m2");
  if (const std::size_t need = batchnorm_select(p).workspace_bytes(p); need > 0)
    expect_error([&] { batchnorm_moments(p, x.data(), out, std::span<std::byte>(workspace).first(need - 1)); },
                 "workspace");
}

}  // namespace
}  // namespace bnorm::test
