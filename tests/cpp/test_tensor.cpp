#include <gtest/gtest.h>

#include <cstdint>

#include "bnorm/tensor/tensor.hpp"

namespace bnorm {

TEST(Tensor, IsAlignedAndSized) {
  Tensor t = Tensor::empty({3, 5, 7}, Layout::channels_last);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.data_f32()) % tensor_alignment, 0u);
  EXPECT_EQ(t.numel(), 105);
  EXPECT_EQ(t.nbytes(), 420u);
  EXPECT_EQ(t.layout(), Layout::channels_last);
  EXPECT_EQ(t.describe(), "(3, 5, 7) f32 channels_last cpu");
}

TEST(Tensor, RejectsBadShapes) {
  EXPECT_THROW(Shape({1, 2, 3, 4, 5, 6}), std::invalid_argument);
  EXPECT_THROW(Shape({2, -1}), std::invalid_argument);
  EXPECT_THROW(Shape(std::vector<std::int64_t>{}), std::invalid_argument);
}

TEST(Tensor, ViewSharesMemory) {
  float data[6] = {1, 2, 3, 4, 5, 6};
  Tensor t = Tensor::view_of(data, {2, 3});
  t.data_f32()[4] = 50;
  EXPECT_EQ(data[4], 50);
}

}  // namespace bnorm
