// CIFAR-10 batches, folder loading (MNIST-style IDX and CIFAR-10), and the real Fashion-MNIST
// files when the machine has them.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <ctime>
#include <filesystem>

#include "bnorm/data/cifar.hpp"
#include "bnorm/data/dataset.hpp"
#include "data_test_support.hpp"

namespace bnorm {
namespace {

using testing::Bytes;
using testing::cifar_bytes;
using testing::expect_error;
using testing::TempDir;

TEST(Cifar, RoundTripPlanarRgb) {
  TempDir dir;
  const Bytes bytes = cifar_bytes(4, 5);
  testing::write_bytes(dir.file("data_batch_1.bin"), bytes);
  const CifarBatch batch = read_cifar10_batch(dir.file("data_batch_1.bin"));
  ASSERT_EQ(batch.count, 4);
  EXPECT_EQ(batch.labels, (std::vector<std::int32_t>{5, 8, 1, 4}));

  const Dataset data = load_cifar10_dataset({dir.file("data_batch_1.bin"), dir.file("data_batch_1.bin")});
  ASSERT_EQ(data.images.shape(), (Shape{8, 3, 32, 32}));
  EXPECT_EQ(data.num_classes, 10);
  EXPECT_EQ(data.class_names.front(), "airplane");
  EXPECT_EQ(data.class_names.back(), "truck");
  // Record 2, green channel (bytes 1024..2047 of its pixels), row 3, column 7.
  const std::size_t record = 2, offset = 1024 + 3 * 32 + 7;
  const float expected = static_cast<float>(bytes[record * 3073 + 1 + offset]) / 255.0f;
  EXPECT_EQ(data.images.data_f32()[record * 3072 + offset], expected);
  EXPECT_EQ(data.images.data_f32()[(4 + record) * 3072 + offset], expected);  // second copy
  EXPECT_EQ(data.labels[6], 1);
  EXPECT_NO_THROW(data.validate());
}

TEST(Cifar, Corruption) {
  TempDir dir;
  Bytes partial = cifar_bytes(2);
  partial.resize(partial.size() - 1);
  testing::write_bytes(dir.file("partial.bin"), partial);
  expect_error([&] { read_cifar10_batch(dir.file("partial.bin")); },
               {dir.file("partial.bin") + ":", "3073-byte records", "found 6145 bytes = 1 records and 3072 bytes left over"});

  Bytes bad_label = cifar_bytes(3);
  bad_label[2 * 3073] = 12;
  testing::write_bytes(dir.file("label.bin"), bad_label);
  expect_error([&] { read_cifar10_batch(dir.file("label.bin")); },
               {dir.file("label.bin") + ": record 2 has label 12, expected 0..9"});

  testing::write_bytes(dir.file("empty.bin"), {});
  expect_error([&] { read_cifar10_batch(dir.file("empty.bin")); }, {dir.file("empty.bin") + ":", "empty file"});
  expect_error([&] { read_cifar10_batch(dir.file("missing.bin")); }, {dir.file("missing.bin") + ": cannot open"});
}

TEST(Folder, CifarBatchesInTheArchiveSubfolder) {
  TempDir dir;
  const std::string sub = dir.file("cifar-10-batches-bin");
  std::filesystem::create_directories(sub);
  for (int i = 1; i <= 5; ++i) testing::write_bytes(sub + "/data_batch_" + std::to_string(i) + ".bin", cifar_bytes(2, i));
  testing::write_bytes(sub + "/test_batch.bin", cifar_bytes(3, 9));
  const TrainTestData data = load_dataset_folder(dir.path().string());
  EXPECT_EQ(data.name, "cifar-10");
  EXPECT_EQ(data.train.size(), 10);
  EXPECT_EQ(data.test.size(), 3);
  EXPECT_EQ(data.train.labels[2], 2);  // batch 2's first record: salt 2
  EXPECT_EQ(data.test.labels[0], 9);
}

TEST(Folder, IdxFilesPlainOrGzipWithClassNamesByFolderName) {
  TempDir dir;
  testing::write_idx_folder(dir.file("Fashion-MNIST"), 30, 10, 4, 3, /*gzip=*/true);
  testing::write_idx_folder(dir.file("digits"), 20, 5, 2, 2, /*gzip=*/false);

  const TrainTestData fashion = load_dataset_folder(dir.file("Fashion-MNIST"));
  EXPECT_EQ(fashion.name, "fashion-mnist");
  EXPECT_EQ(fashion.train.images.shape(), (Shape{30, 1, 4, 3}));
  EXPECT_EQ(fashion.test.images.shape(), (Shape{10, 1, 4, 3}));
  EXPECT_EQ(fashion.train.num_classes, 10);
  EXPECT_EQ(fashion.train.class_names[0], "T-shirt/top");
  EXPECT_EQ(fashion.test.class_names[9], "Ankle boot");

  const TrainTestData digits = load_dataset_folder(dir.file("digits"));
  EXPECT_EQ(digits.name, "mnist");
  EXPECT_EQ(digits.train.class_names[7], "7");
  EXPECT_EQ(digits.test.size(), 5);

  // Only 4 labels in the files: num_classes is still the data set's 10.
  testing::write_idx_folder(dir.file("few"), 8, 4, 2, 2, false, /*classes=*/4);
  EXPECT_EQ(load_dataset_folder(dir.file("few")).train.num_classes, 10);
}

TEST(Folder, NeitherSetListsWhatWasLookedFor) {
  TempDir dir;
  testing::write_idx_folder(dir.file("partial"), 6, 3, 2, 2, true);
  std::filesystem::remove(dir.file("partial/t10k-labels-idx1-ubyte.gz"));
  expect_error([&] { load_dataset_folder(dir.file("partial")); },
               {dir.file("partial") + ": found neither", "t10k-labels-idx1-ubyte[.gz]", "data_batch_1.bin", "test_batch.bin"});
  expect_error([&] { load_dataset_folder(dir.file("absent")); }, {dir.file("absent") + ": not a directory"});
}

// The real data set. Its facts (Xiao, Rasul & Vollgraf 2017): 60000 training and 10000 test
// images of 28 x 28, ten classes of exactly 6000 training images each, and the first training
// image is an ankle boot (label 9).
TEST(FashionMnist, RealFilesWhenInstalled) {
  if (!std::filesystem::exists(default_dataset_dir))
    GTEST_SKIP() << default_dataset_dir << " does not exist (install Fashion-MNIST there to run this test)";
  // The load time is printed for information only: unit tests hold no timing thresholds
  // (shared, noisy machines); `bnorm train` reports the training throughput.
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  const TrainTestData data = load_dataset_folder();
  const double cpu_seconds = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("loaded %s: train %s, test %s in %.3f s wall, %.3f s cpu\n", data.name.c_str(),
              data.train.describe().c_str(), data.test.describe().c_str(), seconds, cpu_seconds);
  EXPECT_EQ(data.name, "fashion-mnist");
  ASSERT_EQ(data.train.images.shape(), (Shape{60000, 1, 28, 28}));
  ASSERT_EQ(data.test.images.shape(), (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(data.train.num_classes, 10);
  EXPECT_EQ(data.train.labels[0], 9);
  EXPECT_EQ(data.train.class_names[data.train.labels[0]], "Ankle boot");
  std::array<int, 10> train_histogram{}, test_histogram{};
  for (std::int32_t label : data.train.labels) ++train_histogram.at(label);
  for (std::int32_t label : data.test.labels) ++test_histogram.at(label);
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(train_histogram[k], 6000) << "class " << k;
    EXPECT_EQ(test_histogram[k], 1000) << "class " << k;
  }
  // Pixels are bytes / 255: within [0, 1], and both ends occur (in the first 1000 images
  // already; scanning all 47 million values takes seconds in sanitizer builds).
  const float* p = data.train.images.data_f32();
  float lo = 1, hi = 0;
  for (std::int64_t i = 0; i < 1000 * 28 * 28; ++i) lo = std::min(lo, p[i]), hi = std::max(hi, p[i]);
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 1.0f);
  EXPECT_NO_THROW(data.train.validate());
  EXPECT_NO_THROW(data.test.validate());
}

}  // namespace
}  // namespace bnorm
