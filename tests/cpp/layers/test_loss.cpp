// Softmax cross-entropy and softmax: a fixed case against PyTorch's values, the gradient by
// finite differences, huge logits, ties in the accuracy count, and bad labels.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "bnorm/layers/loss.hpp"
#include "layer_gradcheck.hpp"

namespace bnorm {
namespace {

using testing::random_tensor;

Tensor from_values(std::vector<float> values, std::int64_t n, std::int64_t k) {
  Tensor t = Tensor::empty({n, k});
  std::copy(values.begin(), values.end(), t.data_f32());
  return t;
}

TEST(Loss, MatchesPyTorchOnAFixedCase) {
  // torch.nn.functional.cross_entropy(z, y) and z.grad, torch.softmax(z, 1) (PyTorch 1.13).
  const Tensor z = from_values({1, 2, 3, 0.5f, -1, 2, 3, 3, -2}, 3, 3);
  const std::vector<std::int32_t> labels{2, 0, 1};
  const CrossEntropyResult r = softmax_cross_entropy(z, labels, true);
  EXPECT_NEAR(r.loss, 0.9484758973121643, 1e-6);
  // Row 0 is right; row 1 is wrong; row 2 ties 0 and 1, the first maximum (0) is not the label.
  EXPECT_EQ(r.correct, 1);
  const double grad[] = {0.030010193586349487, 0.08157616853713989, -0.11158633232116699,
                         -0.27490320801734924, 0.013037524186074734, 0.26186567544937134,
                         0.16610705852508545, -0.16722628474235535, 0.0011192208621650934};
  ASSERT_TRUE(r.dlogits.shape() == Shape({3, 3}));
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(r.dlogits.data_f32()[i], grad[i], 1e-6) << i;

  const double probabilities[] = {0.09003057330846786, 0.2447284758090973, 0.6652409434318542,
                                   0.17529039084911346, 0.03911257162690163, 0.785597026348114,
                                   0.49832117557525635, 0.49832117557525635, 0.0033576616551727057};
  const Tensor p = softmax(z);
  for (int i = 0; i < 9; ++i) EXPECT_NEAR(p.data_f32()[i], probabilities[i], 1e-6) << i;

  EXPECT_FALSE(softmax_cross_entropy(z, labels, false).dlogits.defined());
  EXPECT_EQ(softmax_cross_entropy(z, labels, false).loss, r.loss);
}

TEST(Loss, HandValues) {
  // Two equal logits: loss log 2, gradient (0.5 - 1, 0.5) / N.
  const CrossEntropyResult r = softmax_cross_entropy(from_values({0, 0}, 1, 2), std::vector<std::int32_t>{0}, true);
  EXPECT_NEAR(r.loss, std::log(2.0), 1e-12);
  EXPECT_FLOAT_EQ(r.dlogits.data_f32()[0], -0.5f);
  EXPECT_FLOAT_EQ(r.dlogits.data_f32()[1], 0.5f);
  EXPECT_EQ(r.correct, 1);
}

TEST(Loss, GradientMatchesFiniteDifferences) {
  Rng rng(1);
  const std::int64_t n = 5, k = 7;
  Tensor z = random_tensor({n, k}, Layout::channels_first, rng, 2.0);
  std::vector<std::int32_t> labels(n);
  for (std::int64_t i = 0; i < n; ++i) labels[i] = static_cast<std::int32_t>(rng.below(k));
  const Tensor analytic = softmax_cross_entropy(z, labels, true).dlogits;
  const float h = 1e-2f;
  for (std::int64_t i = 0; i < n * k; ++i) {
    const float saved = z.data_f32()[i];
    z.data_f32()[i] = saved + h;
    const double up = softmax_cross_entropy(z, labels, false).loss;
    z.data_f32()[i] = saved - h;
    const double down = softmax_cross_entropy(z, labels, false).loss;
    z.data_f32()[i] = saved;
    // The loss is computed in double: the central difference is accurate to O(h^2).
    EXPECT_NEAR(analytic.data_f32()[i], (up - down) / (2 * h), 1e-4) << "logit " << i;
  }
}

TEST(Loss, HugeLogitsStayFinite) {
  const Tensor z = from_values({1e4f, 0, -1e4f, 3e38f, -3e38f, 0}, 2, 3);
  const CrossEntropyResult right = softmax_cross_entropy(z, std::vector<std::int32_t>{0, 0}, true);
  EXPECT_TRUE(std::isfinite(right.loss));
  EXPECT_NEAR(right.loss, 0.0, 1e-12);
  EXPECT_EQ(right.correct, 2);
  const CrossEntropyResult wrong = softmax_cross_entropy(z, std::vector<std::int32_t>{1, 2}, true);
  // -log softmax: row 0 label 1 gives 1e4, row 1 label 2 gives 3e38; the mean is finite.
  EXPECT_NEAR(wrong.loss, (1e4 + 3e38) / 2, 1e32);
  EXPECT_TRUE(std::isfinite(wrong.loss));
  for (std::int64_t i = 0; i < 6; ++i) EXPECT_TRUE(std::isfinite(wrong.dlogits.data_f32()[i])) << i;
  EXPECT_FLOAT_EQ(wrong.dlogits.data_f32()[0], 0.5f);   // softmax 1, not the label, / N = 2
  EXPECT_FLOAT_EQ(wrong.dlogits.data_f32()[1], -0.5f);  // softmax 0, the label
  const Tensor p = softmax(z);
  EXPECT_FLOAT_EQ(p.data_f32()[0], 1.0f);
  EXPECT_EQ(p.data_f32()[2], 0.0f);
}

TEST(Loss, SoftmaxRowsSumToOne) {
  Rng rng(2);
  const Tensor z = random_tensor({6, 10}, Layout::channels_first, rng, 5.0);
  const Tensor p = softmax(z);
  for (std::int64_t i = 0; i < 6; ++i) {
    double sum = 0;
    for (std::int64_t j = 0; j < 10; ++j) {
      EXPECT_GE(p.data_f32()[i * 10 + j], 0.0f);
      sum += p.data_f32()[i * 10 + j];
    }
    EXPECT_NEAR(sum, 1.0, 1e-6) << "row " << i;
  }
}

TEST(Loss, BadLabelsNameTheRowAndValue) {
  const Tensor z = Tensor::zeros({3, 4});
  for (std::int32_t bad : {-1, 4, 1000}) {
    try {
      softmax_cross_entropy(z, std::vector<std::int32_t>{0, bad, 1}, true);
      FAIL() << "label " << bad << " accepted";
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("row 1"), std::string::npos) << what;
      EXPECT_NE(what.find("label " + std::to_string(bad)), std::string::npos) << what;
      EXPECT_NE(what.find("[0, 4)"), std::string::npos) << what;
    }
  }
  try {
    softmax_cross_entropy(z, std::vector<std::int32_t>{0, 1}, true);
    FAIL() << "2 labels for 3 rows accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(3, 4)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(softmax_cross_entropy(Tensor::zeros({3, 4, 1}), std::vector<std::int32_t>{0, 0, 0}, true),
               std::invalid_argument);
  EXPECT_THROW(softmax_cross_entropy(Tensor(), {}, true), std::invalid_argument);
  EXPECT_THROW(softmax(Tensor::zeros({12})), std::invalid_argument);
}

}  // namespace
}  // namespace bnorm
