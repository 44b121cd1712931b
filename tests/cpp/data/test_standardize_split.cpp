// Standardization (statistics from the training set only, every mode, the std = 0 guard,
// either layout) and the seeded validation split.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "bnorm/data/split.hpp"
#include "bnorm/data/standardize.hpp"
#include "data_test_support.hpp"

namespace bnorm {
namespace {

using testing::expect_error;

// Random images with a different mean and spread per channel and per position, and (like MNIST)
// a border pixel that is 0 in every image.
Dataset random_dataset(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w, std::uint64_t seed) {
  Dataset data = testing::indexed_dataset(n, c, h, w);
  Rng rng(seed);
  float* p = data.images.data_f32();
  const std::int64_t row = c * h * w;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < row; ++j)
      p[i * row + j] = j == 0 ? 0.0f : static_cast<float>(0.1 * (j % 7) + (0.05 + 0.01 * (j % 5)) * rng.normal());
  return data;
}

// Mean and population std of every statistic's group of values, by brute force in double.
struct Moments { double mean = 0, stddev = 0; };
Moments moments_of(const Tensor& images, const std::function<bool(std::int64_t c, std::int64_t p)>& in_group) {
  const std::int64_t n = images.dim(0), c = images.dim(1), plane = images.dim(2) * images.dim(3);
  double sum = 0, sq = 0;
  std::int64_t count = 0;
  const float* x = images.data_f32();
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t p = 0; p < plane; ++p)
        if (in_group(ch, p)) {
          sum += x[(i * c + ch) * plane + p];
          ++count;
        }
  const double mean = sum / count;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t p = 0; p < plane; ++p)
        if (in_group(ch, p)) sq += std::pow(x[(i * c + ch) * plane + p] - mean, 2);
  return {mean, std::sqrt(sq / count)};
}

TEST(Standardize, GlobalStatisticsMatchBruteForceAndNormalizeTheTrainingSet) {
  Dataset train = random_dataset(200, 3, 4, 5, 1);
  const Standardizer s = fit_standardizer(train, Standardization::global);
  const Moments before = moments_of(train.images, [](auto, auto) { return true; });
  ASSERT_EQ(s.mean.size(), 1u);
  EXPECT_NEAR(s.mean[0], before.mean, 1e-6);
  EXPECT_NEAR(s.stddev[0], before.stddev, 1e-6);
  s.apply(train);
  const Moments after = moments_of(train.images, [](auto, auto) { return true; });
  EXPECT_NEAR(after.mean, 0.0, 1e-5);
  EXPECT_NEAR(after.stddev, 1.0, 1e-5);
}

TEST(Standardize, PerChannelAndPerPixelNormalizeEachGroup) {
  for (Standardization mode : {Standardization::per_channel, Standardization::per_pixel}) {
    SCOPED_TRACE(to_string(mode));
    Dataset train = random_dataset(300, 3, 4, 5, 2);
    const Standardizer s = fit_standardizer(train, mode);
    EXPECT_NO_THROW(s.validate());
    EXPECT_EQ(s.example_shape, (std::vector<std::int64_t>{3, 4, 5}));
    ASSERT_EQ(s.mean.size(), mode == Standardization::per_channel ? 3u : 60u);
    s.apply(train);
    for (std::int64_t ch = 0; ch < 3; ++ch)
      for (std::int64_t p = 0; p < (mode == Standardization::per_pixel ? 20 : 1); ++p) {
        const bool pixel = mode == Standardization::per_pixel;
        const Moments m = moments_of(train.images, [&](std::int64_t c2, std::int64_t p2) { return c2 == ch && (!pixel || p2 == p); });
        EXPECT_NEAR(m.mean, 0.0, 1e-5) << ch << " " << p;
        if (pixel && ch == 0 && p == 0) {
          EXPECT_EQ(s.stddev[0], 1.0f) << "constant pixel: std 0 is stored as 1";
          EXPECT_EQ(m.stddev, 0.0);
        } else {
          EXPECT_NEAR(m.stddev, 1.0, 1e-4) << ch << " " << p;
        }
      }
  }
}

TEST(Standardize, StatisticsComeFromTheTrainingSetOnly) {
  Dataset train = random_dataset(100, 1, 3, 3, 3);
  Dataset test = random_dataset(50, 1, 3, 3, 4);
  float* t = test.images.data_f32();
  for (std::int64_t i = 0; i < test.images.numel(); ++i) t[i] = t[i] * 2.0f + 5.0f;  // a shifted test set
  const Standardizer s = fit_standardizer(train, Standardization::per_pixel);
  const float before = test.images.data_f32()[4];
  s.apply(test);
  // The test value is transformed with the TRAINING statistics of its position (index 4).
  EXPECT_FLOAT_EQ(test.images.data_f32()[4], (before - s.mean[4]) / s.stddev[4]);
  EXPECT_GT(moments_of(test.images, [](auto, auto) { return true; }).mean, 10.0);  // not re-centred
}

TEST(Standardize, ChannelsLastImagesAndSingleImages) {
  const Dataset train = random_dataset(64, 3, 2, 2, 5);
  const Standardizer s = fit_standardizer(train, Standardization::per_pixel);
  // The same image in both layouts gives the same logical values.
  Tensor first = Tensor::empty(Shape{1, 3, 2, 2});
  Tensor last = Tensor::empty(Shape{1, 3, 2, 2}, Layout::channels_last);
  for (int ch = 0; ch < 3; ++ch)
    for (int p = 0; p < 4; ++p) first.data_f32()[ch * 4 + p] = last.data_f32()[p * 3 + ch] = 0.1f * ch + 0.3f * p;
  s.apply(first);
  s.apply(last);
  for (int ch = 0; ch < 3; ++ch)
    for (int p = 0; p < 4; ++p) {
      EXPECT_EQ(first.data_f32()[ch * 4 + p], last.data_f32()[p * 3 + ch]);
      EXPECT_FLOAT_EQ(first.data_f32()[ch * 4 + p], (0.1f * ch + 0.3f * p - s.mean[ch * 4 + p]) / s.stddev[ch * 4 + p]);
    }
}

TEST(Standardize, ModeNamesShapesAndBadStatistics) {
  EXPECT_EQ(parse_standardization("per-pixel"), Standardization::per_pixel);
  EXPECT_EQ(parse_standardization("global"), Standardization::global);
  EXPECT_EQ(parse_standardization(to_string(Standardization::per_channel)), Standardization::per_channel);
  expect_error<std::invalid_argument>([] { parse_standardization("pixel"); }, {"\"pixel\"", "none, global, per-channel or per-pixel"});

  const Standardizer none = fit_standardizer(random_dataset(4, 1, 2, 2, 6), Standardization::none);
  EXPECT_TRUE(none.mean.empty());
  Tensor any = Tensor::full(Shape{2, 5, 1, 1}, 3.0f);
  none.apply(any);
  EXPECT_EQ(any.data_f32()[0], 3.0f);

  const Standardizer s = fit_standardizer(random_dataset(10, 1, 2, 2, 7), Standardization::per_pixel);
  Tensor wrong = Tensor::zeros(Shape{1, 1, 3, 3});
  expect_error<std::invalid_argument>([&] { s.apply(wrong); }, {"(1, 2, 2)", "(1, 1, 3, 3)"});
  Standardizer broken = s;
  broken.stddev[2] = 0.0f;
  expect_error<std::invalid_argument>([&] { broken.validate(); }, {"stddev 2", "positive"});
  broken = s;
  broken.mean.pop_back();
  expect_error<std::invalid_argument>([&] { broken.validate(); }, {"expected 4 of each"});
}

TEST(Split, SizesByCountAndFractionAndEveryExampleOnce) {
  const Dataset data = testing::indexed_dataset(103, 1, 2, 2);
  const TrainValidationSplit by_count = split_validation(data, {.count = 13, .seed = 1});
  EXPECT_EQ(by_count.validation.size(), 13);
  EXPECT_EQ(by_count.train.size(), 90);
  const TrainValidationSplit by_fraction = split_validation(data, {.fraction = 0.1, .seed = 1});
  EXPECT_EQ(by_fraction.validation.size(), 10);  // round(10.3)
  EXPECT_EQ(by_fraction.train.size(), 93);

  // Each example (identified by its first pixel value, its index) lands in exactly one part,
  // with its own label, in the original order.
  std::set<int> seen;
  for (const Dataset* part : {&by_count.train, &by_count.validation}) {
    int previous = -1;
    for (std::int64_t i = 0; i < part->size(); ++i) {
      const int index = static_cast<int>(part->images.data_f32()[i * 4]);
      EXPECT_EQ(part->images.data_f32()[i * 4 + 3], index + 0.003f);
      EXPECT_EQ(part->labels[i], index % 10);
      EXPECT_GT(index, previous);
      previous = index;
      EXPECT_TRUE(seen.insert(index).second) << index;
    }
    EXPECT_EQ(part->num_classes, 10);
  }
  EXPECT_EQ(seen.size(), 103u);
}

TEST(Split, DeterminedBySeed) {
  const Dataset data = testing::indexed_dataset(500, 1, 1, 1);
  auto held_out = [&](std::uint64_t seed) { return split_validation(data, {.count = 50, .seed = seed}).validation.labels; };
  auto first_pixels = [&](std::uint64_t seed) {
    const Dataset v = split_validation(data, {.count = 50, .seed = seed}).validation;
    return std::vector<float>(v.images.data_f32(), v.images.data_f32() + v.size());
  };
  EXPECT_EQ(first_pixels(7), first_pixels(7));
  EXPECT_NE(first_pixels(7), first_pixels(8));
  EXPECT_EQ(held_out(7), held_out(7));
}

TEST(Split, EdgesAndBadOptions) {
  const Dataset data = testing::indexed_dataset(20, 1, 1, 1);
  EXPECT_EQ(split_validation(data, {.count = 0}).train.size(), 20);
  EXPECT_EQ(split_validation(data, {.count = 20}).validation.size(), 20);
  expect_error<std::invalid_argument>([&] { split_validation(data, {.count = 21}); }, {"count 21 outside [0, 20]"});
  expect_error<std::invalid_argument>([&] { split_validation(data, {.fraction = 1.5}); }, {"fraction 1.5"});
  expect_error<std::invalid_argument>([&] { split_validation(data, {}); }, {"exactly one of count and fraction"});
  expect_error<std::invalid_argument>([&] { split_validation(data, {.count = 1, .fraction = 0.5}); }, {"exactly one"});
  const std::vector<std::int64_t> bad = {3, 20};
  expect_error<std::out_of_range>([&] { select_examples(data, bad); }, {"index 20 outside [0, 20)"});
}

}  // namespace
}  // namespace bnorm
