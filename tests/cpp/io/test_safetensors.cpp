// safetensors writer and reader (bnorm/io/safetensors.hpp) and the NamedTensor helpers:
// bitwise round trips, files written by hand from the published format read back, our files
// checked against the format with an independent parser and CRC, and writer input errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "bnorm/io/safetensors.hpp"

namespace bnorm {
namespace {

// Bitwise CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320): the test's own oracle for the
// zlib crc32 the library uses.
std::uint32_t reference_crc32(const void* data, std::size_t size) {
  std::uint32_t crc = 0xFFFFFFFFu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) {
    crc ^= p[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string hex8(std::uint32_t v) {
  char buffer[9];
  std::snprintf(buffer, sizeof buffer, "%08x", v);
  return buffer;
}

// 8-byte little-endian length, header text, data: a file exactly as the format describes it.
std::vector<std::byte> file_of(const std::string& header, const std::vector<unsigned char>& data) {
  std::vector<std::byte> bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<std::byte>((header.size() >> (8 * i)) & 0xFF));
  for (char c : header) bytes.push_back(static_cast<std::byte>(c));
  for (unsigned char c : data) bytes.push_back(static_cast<std::byte>(c));
  return bytes;
}

float float_of_bits(std::uint32_t bits) { return std::bit_cast<float>(bits); }

std::vector<NamedTensor> sample_tensors() {
  const std::vector<float> specials = {float_of_bits(0x7fc12345u),  // NaN with a payload
                                       float_of_bits(0x80000000u),  // -0
                                       float_of_bits(0x00000001u),  // smallest denormal
                                       std::numeric_limits<float>::infinity(), 1.0f / 3.0f, -1e30f};
  const std::vector<std::int64_t> ints = {std::numeric_limits<std::int64_t>::min(), -1, 0,
                                          std::numeric_limits<std::int64_t>::max()};
  const std::vector<std::uint64_t> words = {0x0123456789abcdefULL, std::numeric_limits<std::uint64_t>::max(), 0, 42};
  const std::vector<std::uint8_t> small = {0, 1, 127, 128, 255};
  return {
      named_values<float>("layer.weight", {2, 3}, specials),
      named_values<std::int64_t>("counters", {4}, ints),
      named_scalar_i64("bn.num_batches_tracked", 12345),
      named_values<std::uint64_t>("rng.state", {4}, words),
      named_values<std::uint8_t>("mask", {5}, small),
      named_values<float>("empty", {0, 7}, std::span<const float>()),
      named_values<float>("a.b.c", {1, 1, 1, 1, 2}, std::vector<float>{5.0f, -6.0f}),
  };
}

void expect_same(const std::vector<NamedTensor>& a, const std::vector<NamedTensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].dtype, b[i].dtype) << a[i].name;
    EXPECT_EQ(a[i].shape, b[i].shape) << a[i].name;
    EXPECT_TRUE(a[i].bytes == b[i].bytes) << a[i].name << ": bytes differ";
  }
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(Safetensors, ReferenceCrcMatchesTheStandardCheckValue) {
  EXPECT_EQ(reference_crc32("123456789", 9), 0xCBF43926u);
}

TEST(Safetensors, RoundTripIsBitwise) {
  const std::vector<NamedTensor> tensors = sample_tensors();
  const Metadata metadata = {{"bnorm.spec", "bn(3) > relu"}, {"input_shape", "1,28,28"},
                             {"unicode", "\xc3\xa9t\xc3\xa9 \xe2\x9c\x93"}, {"empty", ""},
                             {"quote\"and\\slash", "line\nbreak"}};
  const SafetensorsFile file = decode_safetensors(encode_safetensors(tensors, metadata), "memory");
  expect_same(file.tensors, tensors);
  EXPECT_EQ(file.metadata, metadata);  // the reserved keys are checked and removed
  EXPECT_TRUE(file.checksum_verified);
  EXPECT_EQ(file.source, "memory");
}

TEST(Safetensors, AnEmptyFileRoundTrips) {
  const SafetensorsFile file = decode_safetensors(encode_safetensors({}, {}), "memory");
  EXPECT_TRUE(file.tensors.empty());
  EXPECT_TRUE(file.metadata.empty());
  EXPECT_TRUE(file.checksum_verified);
}

// Our output parsed the way another tool would: by the published format, not by our reader.
TEST(Safetensors, WrittenFilesFollowTheFormat) {
  const std::vector<NamedTensor> tensors = sample_tensors();
  const std::vector<std::byte> bytes = encode_safetensors(tensors, {{"k", "v"}});
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(bytes[i]) << (8 * i);
  ASSERT_LE(8 + n, bytes.size());
  EXPECT_EQ((8 + n) % 8, 0u) << "the data section starts 8-byte aligned";
  std::string header(reinterpret_cast<const char*>(bytes.data() + 8), n);
  EXPECT_EQ(header.front(), '{');
  const std::size_t last = header.find_last_not_of(' ');
  EXPECT_LT(header.size() - (last + 1), 8u) << "at most 7 spaces of padding";
  header.resize(last + 1);

  const nlohmann::json json = nlohmann::json::parse(header);
  std::uint64_t offset = 0;
  for (const NamedTensor& t : tensors) {
    const nlohmann::json& entry = json.at(t.name);
    EXPECT_EQ(entry.at("dtype").get<std::string>(), to_string(t.dtype));
    EXPECT_EQ(entry.at("shape").get<std::vector<std::int64_t>>(), t.shape);
    EXPECT_EQ(entry.at("data_offsets"), nlohmann::json({offset, offset + t.bytes.size()})) << t.name;
    EXPECT_TRUE(std::equal(t.bytes.begin(), t.bytes.end(), bytes.begin() + 8 + n + offset)) << t.name;
    offset += t.bytes.size();
  }
  EXPECT_EQ(8 + n + offset, bytes.size()) << "the data section holds exactly the tensors";
  const nlohmann::json& meta = json.at("__metadata__");
  EXPECT_EQ(meta.at("k"), "v");
  EXPECT_EQ(meta.at("bnorm.format"), "1");
  EXPECT_EQ(meta.at("bnorm.data_crc32"), hex8(reference_crc32(bytes.data() + 8 + n, offset)));
  // The header checksum covers the header as written, less its own key and value.
  const std::string seal = ",\"bnorm.header_crc32\":\"" + meta.at("bnorm.header_crc32").get<std::string>() + "\"";
  const std::size_t at = header.find(seal);
  ASSERT_NE(at, std::string::npos) << header;
  const std::string unsealed = header.substr(0, at) + header.substr(at + seal.size());
  EXPECT_EQ(meta.at("bnorm.header_crc32"), hex8(reference_crc32(unsealed.data(), unsealed.size())));
}

// A file written byte by byte from the format description, the way Python's safetensors lays
// one out ("__metadata__" first, keys not in data order, space padding), and no bnorm keys.
TEST(Safetensors, ReadsAFileWrittenByHandFromTheSpec) {
  std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]},)"
      R"("z":{"dtype":"F32","shape":[0,4],"data_offsets":[32,32]},)"
      R"("c":{"dtype":"U64","shape":[1,1],"data_offsets":[16,24]},)"
      R"("d":{"dtype":"U8","shape":[3],"data_offsets":[24,27]},)"
      R"("f":{"dtype":"F32","shape":[1],"data_offsets":[28,32]},)"
      R"("e":{"dtype":"U8","shape":[1],"data_offsets":[27,28]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::vector<unsigned char> data = {
      0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0xC0,  // a: 1.5f, -2.0f
      0xF9, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,  // b: -7
      0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // c: 0x0102030405060708
      0x01, 0x02, 0xFF,                                // d: 1, 2, 255
      0x09,                                            // e: 9
      0x00, 0x00, 0x80, 0x3E,                          // f: 0.25f
  };
  const SafetensorsFile file = decode_safetensors(file_of(header, data), "by_hand.safetensors");
  EXPECT_FALSE(file.checksum_verified);
  EXPECT_EQ(file.metadata, (Metadata{{"format", "pt"}}));
  std::vector<std::string> names;
  for (const NamedTensor& t : file.tensors) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "d", "e", "f", "z"}));  // data order
  EXPECT_EQ(values_of<float>(file.at("a"), {2}), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(scalar_i64_of(file.at("b")), -7);
  EXPECT_EQ(values_of<std::uint64_t>(file.at("c"), {1, 1}), (std::vector<std::uint64_t>{0x0102030405060708ULL}));
  EXPECT_EQ(values_of<std::uint8_t>(file.at("d"), {3}), (std::vector<std::uint8_t>{1, 2, 255}));
  EXPECT_EQ(values_of<std::uint8_t>(file.at("e"), {1}), (std::vector<std::uint8_t>{9}));
  EXPECT_EQ(values_of<float>(file.at("f"), {1}), (std::vector<float>{0.25f}));
  EXPECT_TRUE(values_of<float>(file.at("z"), {0, 4}).empty());
}

TEST(Safetensors, ReadsPrettyPrintedAndMinimalHeaders) {
  const std::string pretty = "{\n  \"w\": {\n    \"dtype\": \"F32\",\n    \"shape\": [1],\n"
                             "    \"data_offsets\": [0, 4]\n  }\n}\n";
  const SafetensorsFile file = decode_safetensors(file_of(pretty, {0, 0, 0x80, 0x3F}), "pretty");
  EXPECT_EQ(values_of<float>(file.at("w"), {1}), (std::vector<float>{1.0f}));
  EXPECT_TRUE(decode_safetensors(file_of("{}", {}), "minimal").tensors.empty());
}

TEST(Safetensors, SavesAndLoadsThroughAFile) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() /
                                     ("bnorm_io_safetensors_" + std::to_string(::getpid()) + ".safetensors");
  const std::vector<NamedTensor> tensors = sample_tensors();
  save_safetensors(path, tensors, {{"note", "x"}});
  const SafetensorsFile file = load_safetensors(path);
  std::filesystem::remove(path);
  expect_same(file.tensors, tensors);
  EXPECT_EQ(file.metadata_at("note"), "x");
  EXPECT_EQ(file.source, path.string());
  const std::string missing = error_of([&] { file.at("nope"); });
  EXPECT_NE(missing.find(path.string()), std::string::npos) << missing;
  EXPECT_NE(missing.find("nope"), std::string::npos) << missing;
  EXPECT_NE(error_of([&] { file.metadata_at("bnorm.spec"); }).find("bnorm.spec"), std::string::npos);
  EXPECT_NE(error_of([&] { load_safetensors(path); }).find(path.string()), std::string::npos);
}

TEST(Safetensors, WriterRejectsBadInput) {
  const NamedTensor ok = named_scalar_i64("x", 1);
  auto write_error = [](std::vector<NamedTensor> tensors, Metadata metadata = {}) {
    try {
      encode_safetensors(tensors, metadata);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no std::invalid_argument)");
  };
  EXPECT_NE(write_error({ok, ok}).find("duplicate tensor name x"), std::string::npos);
  EXPECT_NE(write_error({named_scalar_i64("", 1)}).find("invalid tensor name"), std::string::npos);
  EXPECT_NE(write_error({named_scalar_i64("__metadata__", 1)}).find("invalid tensor name"), std::string::npos);
  NamedTensor short_bytes = named_values<float>("w", {2, 2}, std::vector<float>{1, 2, 3, 4});
  short_bytes.bytes.pop_back();
  const std::string size_error = write_error({short_bytes});
  EXPECT_NE(size_error.find("w is F32 (2, 2) (16 bytes) but holds 15 bytes"), std::string::npos) << size_error;
  for (const char* reserved : {"bnorm.format", "bnorm.data_crc32", "bnorm.header_crc32"})
    EXPECT_NE(write_error({ok}, {{reserved, "1"}}).find("reserved"), std::string::npos) << reserved;
  EXPECT_NE(write_error({named_scalar_i64("bad\xff", 1)}).find("UTF-8"), std::string::npos);
  EXPECT_NE(write_error({ok}, {{"k", "bad\xc3"}}).find("UTF-8"), std::string::npos);
  NamedTensor negative = ok;
  negative.shape = {-1};
  EXPECT_NE(write_error({negative}).find("negative extent"), std::string::npos);
}

// ---- NamedTensor helpers

TEST(NamedTensorHelpers, ChannelsLastTensorsAreStoredInLogicalOrder) {
  // (N=1, C=2, H=1, W=3) channels-last: memory is (w, c) = [w0c0 w0c1 w1c0 w1c1 w2c0 w2c1].
  Tensor nhwc = Tensor::empty({1, 2, 1, 3}, Layout::channels_last);
  for (int i = 0; i < 6; ++i) nhwc.data_f32()[i] = static_cast<float>(i);
  const NamedTensor stored = named_tensor("x", nhwc);
  EXPECT_EQ(stored.shape, (std::vector<std::int64_t>{1, 2, 1, 3}));
  EXPECT_EQ(values_of<float>(stored, {1, 2, 1, 3}), (std::vector<float>{0, 2, 4, 1, 3, 5}));

  Tensor back = Tensor::zeros({1, 2, 1, 3}, Layout::channels_last);
  copy_into(stored, back);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back.data_f32()[i], static_cast<float>(i));
  const Tensor nchw = tensor_of(stored);
  EXPECT_EQ(nchw.layout(), Layout::channels_first);
  EXPECT_EQ(nchw.data_f32()[1], 2.0f);
  EXPECT_EQ(nchw.data_f32()[3], 1.0f);
}

TEST(NamedTensorHelpers, ReadingBackChecksTypeAndShape) {
  const std::vector<std::uint64_t> words = {1, 2, 3, 4};
  const NamedTensor rng = named_values<std::uint64_t>("rng.state", {4}, words);
  EXPECT_EQ(values_of<std::uint64_t>(rng, {4}), words);
  EXPECT_EQ(error_of([&] { values_of<std::uint64_t>(rng, {3}); }), "bnorm: rng.state: expected U64 (3), got U64 (4)");
  EXPECT_EQ(error_of([&] { values_of<std::int64_t>(rng, {4}); }), "bnorm: rng.state: expected I64 (4), got U64 (4)");
  EXPECT_EQ(error_of([&] { scalar_i64_of(rng); }), "bnorm: rng.state: expected I64 (), got U64 (4)");
  Tensor wrong = Tensor::zeros({2, 2});
  EXPECT_EQ(error_of([&] { copy_into(rng, wrong); }), "bnorm: rng.state: expected F32 (2, 2), got U64 (4)");
  EXPECT_NE(error_of([&] { tensor_of(named_scalar_i64("n", 3)); }).find("expected F32 of rank 1 to 5, got I64 ()"),
            std::string::npos);
  EXPECT_NE(error_of([&] { named_values<float>("w", {2, 3}, std::vector<float>(5)); })
                .find("w: shape (2, 3) holds 6 values, got 5"),
            std::string::npos);
  EXPECT_EQ(scalar_i64_of(named_scalar_i64("n", -9)), -9);
  EXPECT_EQ(named_scalar_i64("n", 0).describe(), "I64 ()");
}

}  // namespace
}  // namespace bnorm
