// Flatten and Tensor::reshaped: shapes, storage sharing (no copy), memory order for
// channels_last, gradients, and errors that print the shapes.
#include <gtest/gtest.h>

#include "bnorm/layers/flatten.hpp"
#include "layer_gradcheck.hpp"

namespace bnorm {
namespace {

using testing::random_tensor;

TEST(TensorReshaped, SharesStorageAndChecksTheElementCount) {
  Tensor t = Tensor::zeros({2, 3, 4, 5}, Layout::channels_last);
  const Tensor r = t.reshaped({6, 20});
  EXPECT_TRUE(r.shape() == Shape({6, 20}));
  EXPECT_EQ(r.layout(), Layout::channels_first);
  EXPECT_EQ(r.data_f32(), t.data_f32());
  t.data_f32()[37] = 5.0f;
  EXPECT_EQ(r.data_f32()[37], 5.0f);
  EXPECT_EQ(t.reshaped({120}).numel(), 120);
  EXPECT_EQ(r.reshaped({2, 3, 4, 5}, Layout::channels_last).layout(), Layout::channels_last);
  try {
    t.reshaped({7, 20});
    FAIL() << "a reshape to another element count was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 3, 4, 5)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(7, 20)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tensor().reshaped({1}), std::logic_error);
  // The storage outlives the original handle.
  Tensor kept;
  {
    Tensor scratch = Tensor::full({4, 4}, 2.0f);
    kept = scratch.reshaped({16});
  }
  EXPECT_EQ(kept.data_f32()[15], 2.0f);
}

TEST(Flatten, OutputShapes) {
  Flatten flatten;
  EXPECT_TRUE(flatten.output_shape({8, 3, 4, 5}) == Shape({8, 60}));
  EXPECT_TRUE(flatten.output_shape({8, 3, 4, 5, 2}) == Shape({8, 120}));
  EXPECT_TRUE(flatten.output_shape({8, 7}) == Shape({8, 7}));
  EXPECT_TRUE(flatten.output_shape({0, 3, 4}) == Shape({0, 12}));
  try {
    flatten.output_shape({8});
    FAIL() << "a rank-1 input was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(8)"), std::string::npos) << e.what();
  }
}

TEST(Flatten, ForwardAndBackwardAreViewsInMemoryOrder) {
  Rng rng(1);
  for (Layout layout : {Layout::channels_first, Layout::channels_last}) {
    Flatten flatten;
    const Tensor x = random_tensor({2, 3, 4, 5}, layout, rng);
    const Tensor y = flatten.forward(x);
    EXPECT_TRUE(y.shape() == Shape({2, 60}));
    EXPECT_EQ(y.data_f32(), x.data_f32()) << "forward copied";
    const Tensor dy = random_tensor({2, 60}, Layout::channels_first, rng);
    const Tensor dx = flatten.backward(dy);
    EXPECT_TRUE(dx.shape() == x.shape());
    EXPECT_EQ(dx.layout(), layout);
    EXPECT_EQ(dx.data_f32(), dy.data_f32()) << "backward copied";
  }
  // channels_last: the features of sample 0 come as (h, w, c), so feature 1 is c = 1 at h = w = 0.
  Tensor nhwc = Tensor::zeros({1, 3, 2, 2}, Layout::channels_last);
  nhwc.data_f32()[1] = 7.0f;  // n=0, h=0, w=0, c=1
  Flatten flatten;
  EXPECT_EQ(flatten.forward(nhwc).data_f32()[1], 7.0f);
}

TEST(Flatten, GradientsMatchFiniteDifferences) {
  Rng rng(2);
  Flatten flatten;
  testing::expect_gradients_match(flatten, random_tensor({3, 2, 3, 2}, Layout::channels_last, rng));
}

TEST(Flatten, Errors) {
  Flatten flatten;
  EXPECT_THROW(flatten.backward(Tensor::zeros({2, 60})), std::logic_error);
  flatten.forward(Tensor::zeros({2, 3, 4, 5}));
  try {
    flatten.backward(Tensor::zeros({2, 59}));
    FAIL() << "a dy of another shape was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(2, 60)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(2, 59)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(2, 3, 4, 5)"), std::string::npos) << e.what();
  }
  flatten.set_compute_input_grad(false);
  EXPECT_FALSE(flatten.backward(Tensor::zeros({2, 60})).defined());
  EXPECT_THROW(flatten.forward(Tensor()), std::invalid_argument);
}

}  // namespace
}  // namespace bnorm
