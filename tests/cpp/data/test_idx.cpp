// IDX reader and load_idx_dataset: round trips of generated files (plain and gzip) and every
// kind of corruption, each with the message that names the path and expected vs found.
#include <gtest/gtest.h>

#include "bnorm/data/dataset.hpp"
#include "bnorm/data/idx.hpp"
#include "bnorm/data/input_file.hpp"
#include "data_test_support.hpp"

namespace bnorm {
namespace {

using testing::Bytes;
using testing::expect_error;
using testing::idx_bytes;
using testing::pattern_bytes;
using testing::TempDir;

class IdxRoundTrip : public ::testing::TestWithParam<bool> {};  // gzip or not

TEST_P(IdxRoundTrip, ImagesAndLabelsComeBackExactly) {
  const bool gzip = GetParam();
  TempDir dir;
  const Bytes pixels = pattern_bytes(7 * 5 * 3);
  const Bytes labels = {3, 0, 9, 1, 1, 4, 2};
  testing::write_file(dir.file("img"), idx_bytes({7, 5, 3}, pixels), gzip);
  testing::write_file(dir.file("lbl"), idx_bytes({7}, labels), gzip);

  const IdxArray raw = read_idx_u8(dir.file("img"), 3);
  EXPECT_EQ(raw.dims, (std::vector<std::int64_t>{7, 5, 3}));
  EXPECT_EQ(raw.values, pixels);

  const Dataset data = load_idx_dataset(dir.file("img"), dir.file("lbl"));
  ASSERT_EQ(data.images.shape(), (Shape{7, 1, 5, 3}));
  EXPECT_EQ(data.images.layout(), Layout::channels_first);
  EXPECT_EQ(data.labels, (std::vector<std::int32_t>{3, 0, 9, 1, 1, 4, 2}));
  EXPECT_EQ(data.num_classes, 10);  // largest label + 1
  EXPECT_EQ(data.class_names.size(), 10u);
  const float* p = data.images.data_f32();
  for (std::size_t i = 0; i < pixels.size(); ++i) ASSERT_EQ(p[i], static_cast<float>(pixels[i]) / 255.0f) << i;
  EXPECT_NO_THROW(data.validate());
}

INSTANTIATE_TEST_SUITE_P(PlainAndGzip, IdxRoundTrip, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "gzip" : "plain"; });

TEST(Idx, CompressionIsDetectedByContentNotName) {
  TempDir dir;
  const Bytes labels = {1, 2, 3};
  testing::write_gzip(dir.file("labels-no-extension"), idx_bytes({3}, labels));
  testing::write_bytes(dir.file("plain-but-named.gz"), idx_bytes({3}, labels));
  EXPECT_TRUE(InputFile(dir.file("labels-no-extension")).is_gzip());
  EXPECT_FALSE(InputFile(dir.file("plain-but-named.gz")).is_gzip());
  EXPECT_EQ(read_idx_u8(dir.file("labels-no-extension"), 1).values, labels);
  EXPECT_EQ(read_idx_u8(dir.file("plain-but-named.gz"), 1).values, labels);
}

class IdxCorruption : public ::testing::TestWithParam<bool> {
 protected:
  TempDir dir;
  std::string write(const std::string& name, const Bytes& bytes) {
    const std::string path = dir.file(name + (GetParam() ? ".gz" : ""));
    testing::write_file(path, bytes, GetParam());
    return path;
  }
};

TEST_P(IdxCorruption, BadMagic) {
  Bytes bytes = idx_bytes({2, 2, 2}, Bytes(8, 1));
  bytes[0] = 0x12;
  const std::string path = write("magic", bytes);
  expect_error([&] { read_idx_u8(path, 3); }, {path + ":", "expected magic number 0x00000803", "found 0x12000803"});
}

TEST_P(IdxCorruption, WrongDtype) {
  const std::string path = write("dtype", idx_bytes({2, 2, 2}, Bytes(32, 0), 0x0D));
  expect_error([&] { read_idx_u8(path, 3); }, {path + ":", "expected IDX data type 0x08 (unsigned byte)", "found 0x0D (float32)"});
}

TEST_P(IdxCorruption, WrongNumberOfDimensions) {
  // A labels file given where images are expected.
  const std::string path = write("ndim", idx_bytes({4}, Bytes(4, 0)));
  expect_error([&] { read_idx_u8(path, 3); }, {path + ":", "expected 3 dimensions", "found 1", "0x00000801"});
}

TEST_P(IdxCorruption, TruncatedPayload) {
  Bytes bytes = idx_bytes({60000, 28, 28}, pattern_bytes(1000));
  const std::string path = write("train-images-idx3-ubyte", bytes);
  expect_error([&] { read_idx_u8(path, 3); },
               {path + ": expected 47040000 bytes of pixels after the header, found 1000"});
}

TEST_P(IdxCorruption, TrailingGarbage) {
  Bytes bytes = idx_bytes({3}, {1, 2, 3});
  bytes.insert(bytes.end(), {7, 7});
  const std::string path = write("trailing", bytes);
  expect_error([&] { read_idx_u8(path, 1); }, {path + ": expected 3 bytes of labels after the header, found 5"});
}

TEST_P(IdxCorruption, ZeroDimension) {
  const std::string path = write("zero", idx_bytes({5, 0, 28}, {}));
  expect_error([&] { read_idx_u8(path, 3); }, {path + ":", "dimension 1 of (5, 0, 28) is zero"});
}

TEST_P(IdxCorruption, AbsurdDimension) {
  const std::string path = write("huge", idx_bytes({0xFFFFFFFFu, 28, 28}, Bytes(16, 0)));
  expect_error([&] { read_idx_u8(path, 3); }, {path + ":", "4294967295", "limit"});
  const std::string product = write("product", idx_bytes({1u << 29, 1u << 29, 1}, Bytes(16, 0)));
  expect_error([&] { read_idx_u8(product, 3); }, {product + ":", "(536870912, 536870912, 1)", "corrupt header"});
}

TEST_P(IdxCorruption, TruncatedHeader) {
  const std::string path = write("short", Bytes{0, 0, 8, 3, 0, 0});
  expect_error([&] { read_idx_u8(path, 3); }, {path + ":", "expected 12 bytes of dimension sizes", "found 2"});
  const std::string empty = write("empty", Bytes{});
  expect_error([&] { read_idx_u8(empty, 1); }, {empty + ":", "magic number", "found a file of 0 bytes"});
}

TEST_P(IdxCorruption, LabelCountMismatch) {
  const std::string images = write("images", idx_bytes({4, 2, 2}, Bytes(16, 9)));
  const std::string labels = write("labels", idx_bytes({3}, {0, 1, 2}));
  expect_error([&] { load_idx_dataset(images, labels); },
               {images + " holds 4 images", labels + " holds 3 labels"});
}

INSTANTIATE_TEST_SUITE_P(PlainAndGzip, IdxCorruption, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "gzip" : "plain"; });

TEST(Idx, MissingFile) {
  TempDir dir;
  const std::string path = dir.file("nope-idx3-ubyte.gz");
  expect_error([&] { read_idx_u8(path, 3); }, {path + ": cannot open", "No such file"});
  expect_error([&] { load_idx_dataset(path, path); }, {path + ": cannot open"});
}

TEST(Idx, CorruptAndTruncatedGzipStreams) {
  TempDir dir;
  const std::string good = dir.file("good.gz");
  testing::write_gzip(good, idx_bytes({2000}, pattern_bytes(2000)));
  Bytes compressed;
  {
    std::ifstream in(good, std::ios::binary);
    compressed.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(compressed.size(), 40u);

  Bytes cut(compressed.begin(), compressed.begin() + compressed.size() / 2);
  testing::write_bytes(dir.file("cut.gz"), cut);
  expect_error([&] { read_idx_u8(dir.file("cut.gz"), 1); }, {dir.file("cut.gz") + ": truncated gzip data"});

  Bytes flipped = compressed;
  for (std::size_t i = 12; i < flipped.size() - 8; i += 3) flipped[i] ^= 0x5a;  // wreck the deflate data
  testing::write_bytes(dir.file("flipped.gz"), flipped);
  expect_error([&] { read_idx_u8(dir.file("flipped.gz"), 1); }, {dir.file("flipped.gz") + ": corrupt gzip data ("});
}

TEST(Idx, DirectoryInsteadOfFile) {
  TempDir dir;
  expect_error([&] { read_idx_u8(dir.path().string(), 1); }, {dir.path().string() + ": cannot open"});
}

}  // namespace
}  // namespace bnorm
