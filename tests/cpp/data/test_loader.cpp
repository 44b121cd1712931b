// BatchLoader: every example once per epoch, seeded orders, drop_last, channels_last
// transposes, and bitwise resume from a saved LoaderState.
#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <numeric>

#include "bnorm/data/loader.hpp"
#include "data_test_support.hpp"

namespace bnorm {
namespace {

using testing::expect_error;
using testing::indexed_dataset;

// The dataset indices of one epoch, checking on the way that each batch's pixels and labels
// are those of the examples it claims (pixel (i, j) of the indexed dataset is i + j / 1000).
std::vector<std::int64_t> run_epoch(BatchLoader& loader, std::vector<std::int64_t>* sizes = nullptr) {
  std::vector<std::int64_t> seen;
  Batch batch;
  const Dataset& data = loader.data();
  const std::int64_t row = data.example_numel();
  while (loader.next(batch)) {
    EXPECT_EQ(batch.x.dim(0), batch.size());
    EXPECT_EQ(batch.x.layout(), loader.options().layout);
    for (std::int64_t b = 0; b < batch.size(); ++b) {
      const std::int64_t index = batch.indices[b];
      EXPECT_EQ(batch.labels[b], data.labels[index]);
      if (loader.options().layout == Layout::channels_first || data.channels() == 1) {
        EXPECT_EQ(batch.x.data_f32()[b * row + row - 1], static_cast<float>(index) + static_cast<float>(row - 1) / 1000.0f);
      }
      seen.push_back(index);
    }
    if (sizes) sizes->push_back(batch.size());
  }
  return seen;
}

std::vector<std::int64_t> sorted(std::vector<std::int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::int64_t> iota(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), std::int64_t{0});
  return v;
}

TEST(BatchLoader, EveryExampleOncePerEpochInANewOrderEachEpoch) {
  const Dataset data = indexed_dataset(103, 1, 3, 2);
  BatchLoader loader(data, {.batch_size = 10, .shuffle = true, .seed = 42});
  EXPECT_EQ(loader.batches_per_epoch(), 11);
  std::vector<std::int64_t> sizes;
  const auto epoch0 = run_epoch(loader, &sizes);
  EXPECT_EQ(sizes, (std::vector<std::int64_t>{10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3}));
  EXPECT_EQ(loader.epoch(), 1);
  const auto epoch1 = run_epoch(loader);
  EXPECT_EQ(sorted(epoch0), iota(103));
  EXPECT_EQ(sorted(epoch1), iota(103));
  EXPECT_NE(epoch0, iota(103)) << "shuffled";
  EXPECT_NE(epoch0, epoch1) << "a new order every epoch";
}

TEST(BatchLoader, SameSeedSameOrderOtherSeedOtherOrder) {
  const Dataset data = indexed_dataset(64, 1, 1, 1);
  auto two_epochs = [&](std::uint64_t seed) {
    BatchLoader loader(data, {.batch_size = 8, .seed = seed});
    auto a = run_epoch(loader);
    const auto b = run_epoch(loader);
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  EXPECT_EQ(two_epochs(5), two_epochs(5));
  EXPECT_NE(two_epochs(5), two_epochs(6));
}

TEST(BatchLoader, NoShuffleIsDatasetOrder) {
  const Dataset data = indexed_dataset(25, 2, 2, 2);
  BatchLoader loader(data, {.batch_size = 7, .shuffle = false});
  EXPECT_EQ(run_epoch(loader), iota(25));
  EXPECT_EQ(run_epoch(loader), iota(25));
}

TEST(BatchLoader, DropLast) {
  const Dataset data = indexed_dataset(23, 1, 2, 2);
  BatchLoader loader(data, {.batch_size = 5, .seed = 3, .drop_last = true});
  EXPECT_EQ(loader.batches_per_epoch(), 4);
  std::vector<std::int64_t> sizes;
  const auto seen = run_epoch(loader, &sizes);
  EXPECT_EQ(sizes, (std::vector<std::int64_t>(4, 5)));
  std::vector<std::int64_t> unique = sorted(seen);
  EXPECT_EQ(std::adjacent_find(unique.begin(), unique.end()), unique.end()) << "no example twice";
  // The 3 left out are the last 3 of the epoch's order, and the next epoch starts afresh.
  EXPECT_EQ(run_epoch(loader).size(), 20u);
  // Batch larger than the data set: nothing with drop_last, everything in one batch without.
  BatchLoader big(data, {.batch_size = 50, .drop_last = true});
  EXPECT_EQ(big.batches_per_epoch(), 0);
  EXPECT_TRUE(run_epoch(big).empty());
  BatchLoader big_keep(data, {.batch_size = 50});
  EXPECT_EQ(sorted(run_epoch(big_keep)), iota(23));
}

TEST(BatchLoader, ChannelsLastTransposesRgb) {
  const Dataset data = indexed_dataset(9, 3, 2, 4);  // value i + (c * 8 + h * 4 + w) / 1000
  BatchLoader loader(data, {.batch_size = 4, .seed = 1, .layout = Layout::channels_last});
  Batch batch;
  ASSERT_TRUE(loader.next(batch));
  ASSERT_EQ(batch.x.shape(), (Shape{4, 3, 2, 4}));
  ASSERT_EQ(batch.x.layout(), Layout::channels_last);
  for (std::int64_t b = 0; b < 4; ++b)
    for (int h = 0; h < 2; ++h)
      for (int w = 0; w < 4; ++w)
        for (int c = 0; c < 3; ++c) {
          const float expected = static_cast<float>(batch.indices[b]) + static_cast<float>(c * 8 + h * 4 + w) / 1000.0f;
          ASSERT_EQ(batch.x.data_f32()[((b * 2 + h) * 4 + w) * 3 + c], expected) << b << h << w << c;
        }
  // One channel: channels_last memory is the channels_first memory.
  const Dataset gray = indexed_dataset(6, 1, 2, 3);
  const Tensor a = gather_examples(gray.images, {4, 1}, Layout::channels_first);
  const Tensor b = gather_examples(gray.images, {4, 1}, Layout::channels_last);
  EXPECT_TRUE(std::equal(a.data_f32(), a.data_f32() + a.numel(), b.data_f32()));
  EXPECT_EQ(b.layout(), Layout::channels_last);
}

TEST(BatchLoader, ResumeFromSavedStateGivesTheIdenticalRemainingSequence) {
  const Dataset data = indexed_dataset(50, 1, 2, 2);
  const BatchLoaderOptions options{.batch_size = 6, .seed = 11};
  // The uninterrupted run: 3 epochs, flattened to (epoch, index) pairs.
  BatchLoader reference(data, options);
  std::vector<std::int64_t> whole;
  for (int e = 0; e < 3; ++e) {
    const auto epoch = run_epoch(reference);
    whole.insert(whole.end(), epoch.begin(), epoch.end());
  }
  // Interrupted in the middle of epoch 1 (after 4 of its batches) and in epoch 0.
  for (int stop_epoch : {0, 1}) {
    BatchLoader first(data, options);
    std::vector<std::int64_t> got;
    Batch batch;
    if (stop_epoch == 1) got = run_epoch(first);
    for (int k = 0; k < 4; ++k) {
      ASSERT_TRUE(first.next(batch));
      got.insert(got.end(), batch.indices.begin(), batch.indices.end());
    }
    const LoaderState saved = first.state();
    EXPECT_EQ(saved.epoch, stop_epoch);
    EXPECT_EQ(saved.position, 24);

    BatchLoader resumed(data, options);  // a fresh process would build it the same way
    resumed.set_state(saved);
    EXPECT_EQ(resumed.state(), saved);
    // Rest of this epoch, then whole epochs until epoch 3.
    while (resumed.epoch() < 3) {
      const auto rest = run_epoch(resumed);
      got.insert(got.end(), rest.begin(), rest.end());
    }
    EXPECT_EQ(got, whole) << "interrupted in epoch " << stop_epoch;
  }
}

TEST(BatchLoader, RejectsBadOptionsAndStates) {
  const Dataset data = indexed_dataset(10, 1, 1, 1);
  expect_error<std::invalid_argument>([&] { BatchLoader(data, {.batch_size = 0}); }, {"batch_size must be at least 1, got 0"});
  Dataset broken = data;
  broken.labels.pop_back();
  expect_error<std::invalid_argument>([&] { BatchLoader(broken, {}); }, {"9 labels"});
  BatchLoader loader(data, {});
  expect_error<std::invalid_argument>([&] { loader.set_state({.epoch = 0, .position = 11, .rng = Rng(1).state()}); },
                                      {"position 11", "10 examples"});
  expect_error<std::invalid_argument>([&] { loader.set_state({.epoch = 0, .position = 0}); }, {"all zero"});
  expect_error<std::out_of_range>([&] { gather_examples(data.images, {10}, Layout::channels_first); }, {"index 10"});
}

}  // namespace
}  // namespace bnorm
