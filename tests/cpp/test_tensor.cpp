#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>

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

TEST(Tensor, ZerosAndFull) {
  const Tensor z = Tensor::zeros({2, 3, 4});
  for (std::int64_t i = 0; i < z.numel(); ++i) EXPECT_EQ(z.data_f32()[i], 0.0f);
  const Tensor f = Tensor::full({5}, 2.5f, Layout::channels_last);
  for (std::int64_t i = 0; i < f.numel(); ++i) EXPECT_EQ(f.data_f32()[i], 2.5f);
  EXPECT_EQ(f.layout(), Layout::channels_last);
}

// A copy shares the buffer (the layers keep their input for backward this way, no copy).
TEST(Tensor, CopiesShareStorage) {
  Tensor a = Tensor::zeros({2, 2});
  const Tensor b = a;
  a.data_f32()[3] = 7.0f;
  EXPECT_EQ(b.data_f32()[3], 7.0f);
}

TEST(Tensor, ShapesPrintAndCompare) {
  EXPECT_EQ(Shape({4, 3, 5, 5}).to_string(), "(4, 3, 5, 5)");
  EXPECT_EQ(Shape({7}).to_string(), "(7)");
  EXPECT_TRUE(Shape({2, 3}) == Shape({2, 3}));
  EXPECT_FALSE(Shape({2, 3}) == Shape({2, 3, 1}));
  EXPECT_EQ(Shape({2, 0, 3}).numel(), 0);
  EXPECT_THROW(Shape({2, 3})[2], std::out_of_range);
}

TEST(Tensor, UndefinedHasNoData) {
  const Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_THROW(t.data_f32(), std::logic_error);
}

}  // namespace bnorm

namespace bnorm {

// Large buffers come back from the cache for the next tensor of the same rounded size, and
// stay separate while both are alive; small ones and release_cached_tensor_memory() go back
// to malloc. Under AddressSanitizer nothing is cached (so use-after-free is still caught).
TEST(Tensor, LargeStorageIsReusedFromTheCache) {
  release_cached_tensor_memory();
  const Shape big{3, 1000, 100};  // 1.2 MB
  const void* first = nullptr;
  {
    Tensor a = Tensor::full(big, 1.0f);
    first = a.data_f32();
  }
  Tensor b = Tensor::empty(big);
  Tensor c = Tensor::empty(big);
  EXPECT_NE(b.data_f32(), c.data_f32());
  for (Tensor* t : {&b, &c}) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t->data_f32()) % tensor_alignment, 0u);
    t->data_f32()[big.numel() - 1] = 2.0f;  // the whole size is usable
  }
#if defined(__SANITIZE_ADDRESS__)
  (void)first;
#else
  EXPECT_TRUE(b.data_f32() == first || c.data_f32() == first) << "the freed buffer was not reused";
#endif
  Tensor zeros = Tensor::zeros(big);  // zeros() clears what a reused buffer held
  for (std::int64_t i = 0; i < zeros.numel(); ++i) ASSERT_EQ(zeros.data_f32()[i], 0.0f) << i;
  release_cached_tensor_memory();
}

}  // namespace bnorm
