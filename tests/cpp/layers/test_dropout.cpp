// Dropout: the documented mask (counter_uniform(seed, step, i) < p drops) as the oracle, the
// fraction kept against the binomial spread, independence from the thread count, the step
// buffer, eval identity, and option checks.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "bnorm/layers/dropout.hpp"
#include "bnorm/util/random.hpp"
#include "layer_gradcheck.hpp"

namespace bnorm {
namespace {

using testing::random_tensor;

// Restores OpenMP's thread count at the end of a test.
struct ThreadCountGuard {
  int saved = omp_get_max_threads();
  ~ThreadCountGuard() { omp_set_num_threads(saved); }
};

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data_f32(), b.data_f32(), a.nbytes()) == 0;
}

TEST(Dropout, RejectsProbabilitiesOutsideZeroToOne) {
  for (double p : {-0.1, 1.0, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
    try {
      Dropout layer({.p = p});
      FAIL() << "p = " << p << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("[0, 1)"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(Dropout({.p = 0.0}));
  EXPECT_NO_THROW(Dropout({.p = 0.999}));
  EXPECT_EQ(Dropout({.p = 0.25, .seed = 3}).describe(), "dropout(p=0.25, seed=3)");
}

TEST(Dropout, TrainingMaskIsTheDocumentedOneAndBackwardUsesIt) {
  Rng rng(1);
  const DropoutOptions options{.p = 0.3, .seed = 42};
  Dropout layer(options);
  const float scale = static_cast<float>(1.0 / (1.0 - options.p));
  const Tensor x = random_tensor({4, 3, 5, 7}, Layout::channels_last, rng);
  for (std::uint64_t step = 0; step < 3; ++step) {
    ASSERT_EQ(layer.step(), static_cast<std::int64_t>(step));
    const Tensor y = layer.forward(x);
    const Tensor dy = random_tensor(x.shape(), x.layout(), rng);
    const Tensor dx = layer.backward(dy);
    EXPECT_EQ(y.layout(), Layout::channels_last);
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const bool kept = !(counter_uniform(options.seed, step, i) < static_cast<float>(options.p));
      ASSERT_EQ(y.data_f32()[i], kept ? x.data_f32()[i] * scale : 0.0f) << "step " << step << " i " << i;
      ASSERT_EQ(dx.data_f32()[i], kept ? dy.data_f32()[i] * scale : 0.0f) << "step " << step << " i " << i;
    }
  }
  EXPECT_EQ(layer.step(), 3);
}

TEST(Dropout, FractionKeptIsOneMinusP) {
  const std::int64_t n = 1 << 18;
  const Tensor x = Tensor::full({n / 64, 64}, 1.0f);
  for (double p : {0.1, 0.5, 0.9}) {
    Dropout layer({.p = p, .seed = 7});
    const Tensor y = layer.forward(x);
    std::int64_t kept = 0;
    for (std::int64_t i = 0; i < n; ++i) kept += y.data_f32()[i] != 0.0f;
    // Binomial(n, 1-p): 5 standard deviations (a false alarm about once in 3.5 million runs).
    const double mean = n * (1 - p);
    const double tolerance = 5 * std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(static_cast<double>(kept), mean, tolerance) << "p = " << p;
    // Inverted dropout keeps the expected value: the mean of y is ~ 1.
    EXPECT_NEAR(static_cast<double>(kept) / (1 - p) / n, 1.0, tolerance / mean) << "p = " << p;
  }
}

TEST(Dropout, MaskIsTheSameForAnyThreadCount) {
  ThreadCountGuard guard;
  Rng rng(2);
  const Tensor x = random_tensor({8, 4, 64, 64}, Layout::channels_first, rng);  // 2^17 elements
  Dropout layer({.p = 0.5, .seed = 9});
  omp_set_num_threads(1);
  const Tensor y1 = layer.forward(x);
  const Tensor dx1 = layer.backward(x);
  layer.buffers().at(0).count[0] = 0;  // replay step 0
  omp_set_num_threads(2);
  const Tensor y2 = layer.forward(x);
  const Tensor dx2 = layer.backward(x);
  EXPECT_TRUE(bitwise_equal(y1, y2));
  EXPECT_TRUE(bitwise_equal(dx1, dx2));
}

TEST(Dropout, StepIsABufferThatReplaysMasks) {
  Dropout layer({.p = 0.5, .seed = 1});
  std::vector<BufferRef> buffers = layer.buffers();
  ASSERT_EQ(buffers.size(), 1u);
  EXPECT_EQ(buffers[0].name, "step");
  EXPECT_EQ(buffers[0].tensor, nullptr);
  ASSERT_NE(buffers[0].count, nullptr);

  const Tensor x = Tensor::full({16, 64}, 1.0f);
  const Tensor first = testing::copy_of(layer.forward(x));
  const Tensor second = testing::copy_of(layer.forward(x));
  EXPECT_EQ(*buffers[0].count, 2);
  EXPECT_FALSE(bitwise_equal(first, second)) << "consecutive steps drew the same mask";
  *buffers[0].count = 1;
  EXPECT_TRUE(bitwise_equal(layer.forward(x), second));

  Dropout other_seed({.p = 0.5, .seed = 2});
  EXPECT_FALSE(bitwise_equal(other_seed.forward(x), first)) << "the seed does not change the mask";
}

TEST(Dropout, EvalAndZeroPAreTheIdentity) {
  Rng rng(3);
  const Tensor x = random_tensor({3, 5, 2, 2}, Layout::channels_first, rng);
  Dropout layer({.p = 0.5});
  layer.eval();
  const Tensor y = layer.forward(x);
  EXPECT_EQ(y.data_f32(), x.data_f32()) << "eval mode copied its input";
  EXPECT_EQ(layer.step(), 0) << "an eval forward advanced the step";
  const Tensor dy = random_tensor(x.shape(), x.layout(), rng);
  EXPECT_TRUE(bitwise_equal(layer.backward(dy), dy));
  testing::expect_gradients_match(layer, x);

  Dropout zero({.p = 0.0});
  const Tensor z = zero.forward(x);
  EXPECT_TRUE(bitwise_equal(z, x));
  EXPECT_EQ(zero.step(), 1);  // a training forward, even if it drops nothing
  EXPECT_TRUE(bitwise_equal(zero.backward(dy), dy));
}

TEST(Dropout, Errors) {
  Dropout layer({.p = 0.5});
  EXPECT_THROW(layer.backward(Tensor::zeros({2, 3})), std::logic_error);
  layer.forward(Tensor::zeros({2, 3}));
  try {
    layer.backward(Tensor::zeros({3, 2}));
    FAIL() << "a dy of another shape was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(3, 2)"), std::string::npos) << e.what();
  }
  layer.set_compute_input_grad(false);
  EXPECT_FALSE(layer.backward(Tensor::zeros({2, 3})).defined());
}

}  // namespace
}  // namespace bnorm
