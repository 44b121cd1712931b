// The safetensors reader against damaged and malformed files: every case must throw
// std::runtime_error naming the file and the problem, never crash or return garbage.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "bnorm/io/safetensors.hpp"

namespace bnorm {
namespace {

std::vector<std::byte> file_of(const std::string& header, std::size_t data_bytes) {
  std::vector<std::byte> bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<std::byte>((header.size() >> (8 * i)) & 0xFF));
  for (char c : header) bytes.push_back(static_cast<std::byte>(c));
  bytes.resize(bytes.size() + data_bytes, std::byte{0});
  return bytes;
}

// The reader's message for `bytes`, or "(accepted)".
std::string decode_error(std::span<const std::byte> bytes) {
  try {
    decode_safetensors(bytes, "damaged.safetensors");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(accepted)";
}

#define EXPECT_REJECTED(bytes, fragment)                                            \
  do {                                                                              \
    const std::string message = decode_error(bytes);                                \
    EXPECT_NE(message.find("damaged.safetensors"), std::string::npos) << message;   \
    EXPECT_NE(message.find(fragment), std::string::npos) << message;                \
  } while (0)

std::vector<std::byte> good_file() {
  const std::vector<NamedTensor> tensors = {
      named_values<float>("bn.weight", {3}, std::vector<float>{1, 2, 3}),
      named_scalar_i64("bn.num_batches_tracked", 4),
      named_values<std::uint64_t>("rng", {2}, std::vector<std::uint64_t>{5, 6}),
  };
  return encode_safetensors(tensors, {{"bnorm.spec", "bn(3)"}});
}

std::size_t header_end(const std::vector<std::byte>& bytes) {
  std::size_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::size_t>(bytes[i]) << (8 * i);
  return 8 + n;
}

TEST(SafetensorsCorruption, TheGoodFileLoads) { EXPECT_EQ(decode_error(good_file()), "(accepted)"); }

TEST(SafetensorsCorruption, EveryTruncationIsRejected) {
  const std::vector<std::byte> bytes = good_file();
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    const std::string message = decode_error(std::span(bytes).first(size));
    EXPECT_NE(message, "(accepted)") << "truncated to " << size << " of " << bytes.size() << " bytes";
  }
  EXPECT_REJECTED(std::span(bytes).first(5), "the file is 5 bytes, shorter than the 8-byte header length");
  EXPECT_REJECTED(std::span(bytes).first(20), "runs past the end of the file (20 bytes)");
  EXPECT_REJECTED(std::span(bytes).first(bytes.size() - 1), "run past the data section");
}

TEST(SafetensorsCorruption, AppendedBytesAreRejected) {
  std::vector<std::byte> bytes = good_file();
  bytes.push_back(std::byte{0});
  EXPECT_REJECTED(bytes, "the data section is 37 bytes but the tensors cover 36");
}

TEST(SafetensorsCorruption, EveryFlippedDataByteFailsTheChecksum) {
  const std::vector<std::byte> good = good_file();
  for (std::size_t i = header_end(good); i < good.size(); ++i)
    for (unsigned char mask : {0x01, 0x80}) {
      std::vector<std::byte> bytes = good;
      bytes[i] ^= std::byte{mask};
      EXPECT_REJECTED(bytes, "data checksum mismatch");
    }
}

// Every byte of the length and the header: a flip breaks the JSON, the structure checks or
// the header checksum; none goes through unnoticed.
TEST(SafetensorsCorruption, EveryFlippedHeaderByteIsRejected) {
  const std::vector<std::byte> good = good_file();
  for (std::size_t i = 0; i < header_end(good); ++i)
    for (unsigned char mask : {0x01, 0x80}) {
      std::vector<std::byte> bytes = good;
      bytes[i] ^= std::byte{mask};
      EXPECT_NE(decode_error(bytes), "(accepted)") << "byte " << i << " ^ " << int(mask);
    }
  // A changed model spec is caught by the header checksum in particular.
  std::vector<std::byte> bytes = good;
  const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  bytes[text.find("bn(3)") + 3] = std::byte{'4'};
  EXPECT_REJECTED(bytes, "header checksum mismatch");
}

TEST(SafetensorsCorruption, HugeHeaderLengthsAreRejectedBeforeAllocating) {
  std::vector<std::byte> bytes = good_file();
  for (int i = 0; i < 8; ++i) bytes[i] = std::byte{0xFF};
  EXPECT_REJECTED(bytes, "header length 18446744073709551615 is above the 100000000-byte limit");
  const std::uint64_t n = 100'000'001;
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::byte>((n >> (8 * i)) & 0xFF);
  EXPECT_REJECTED(bytes, "header length 100000001 is above the 100000000-byte limit");
  const std::uint64_t past_end = bytes.size() - 7;
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::byte>((past_end >> (8 * i)) & 0xFF);
  EXPECT_REJECTED(bytes, "header length " + std::to_string(past_end) + " runs past the end of the file");
}

TEST(SafetensorsCorruption, BadJsonIsRejected) {
  EXPECT_REJECTED(file_of("", 0), "not valid JSON");
  EXPECT_REJECTED(file_of("{\"a\": ", 0), "not valid JSON");
  EXPECT_REJECTED(file_of("{} x", 0), "not valid JSON");
  EXPECT_REJECTED(file_of("{\"\xff\":{}}", 0), "not valid JSON");  // not UTF-8
  EXPECT_REJECTED(file_of("[1, 2]", 0), "the JSON header is not an object");
  EXPECT_REJECTED(file_of("{\"a\": 3}", 0), "a: entry is 3, not an object");
}

std::string entry(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return "{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

TEST(SafetensorsCorruption, BadEntriesAreRejected) {
  auto one = [](const std::string& e, std::size_t data) { return file_of("{\"w\":" + e + "}", data); };
  EXPECT_REJECTED(one(entry("\"F16\"", "[2]", "[0,4]"), 4), "w: unsupported dtype \"F16\" (bnorm reads F32, I64, U64, U8)");
  EXPECT_REJECTED(one(entry("\"f32\"", "[2]", "[0,8]"), 8), "unsupported dtype \"f32\"");
  EXPECT_REJECTED(one(entry("7", "[2]", "[0,8]"), 8), "w: dtype 7 is not a string");
  EXPECT_REJECTED(one(entry("\"F32\"", "[-2]", "[0,8]"), 8), "w: negative value -2 in shape");
  EXPECT_REJECTED(one(entry("\"F32\"", "[2.5]", "[0,8]"), 8), "w: shape holds 2.5, not a non-negative integer");
  EXPECT_REJECTED(one(entry("\"F32\"", "[\"2\"]", "[0,8]"), 8), "not a non-negative integer");
  EXPECT_REJECTED(one(entry("\"F32\"", "2", "[0,8]"), 8), "w: shape 2 is not an array");
  EXPECT_REJECTED(one(entry("\"F32\"", "[4294967296,4294967296]", "[0,8]"), 8), "overflows");
  EXPECT_REJECTED(one(entry("\"U8\"", "[9223372036854775808]", "[0,8]"), 8), "overflows");
  EXPECT_REJECTED(one(entry("\"F32\"", "[99999999999999999999]", "[0,8]"), 8), "not a non-negative integer");
  EXPECT_REJECTED(one(entry("\"F32\"", "[3]", "[0,8]"), 8), "w: F32 (3) needs 12 bytes but data_offsets [0,8] span 8");
  EXPECT_REJECTED(one(entry("\"F32\"", "[2]", "[8,0]"), 8), "end before they begin");
  EXPECT_REJECTED(one(entry("\"F32\"", "[2]", "[0]"), 8), "is not a [begin, end] pair");
  EXPECT_REJECTED(one(entry("\"F32\"", "[2]", "[0,8,9]"), 8), "is not a [begin, end] pair");
  EXPECT_REJECTED(one(entry("\"F32\"", "[2]", "[-8,0]"), 8), "negative value -8 in data_offsets");
  EXPECT_REJECTED(one(entry("\"F32\"", "[2]", "[8,16]"), 8), "w: data_offsets [8, 16] run past the data section (8 bytes)");
  EXPECT_REJECTED(one(entry("\"F32\"", "[2]", "[4,12]"), 12), "w: data_offsets [4, 12] leave a gap after offset 0");
  EXPECT_REJECTED(one("{\"dtype\":\"F32\",\"shape\":[2]}", 8), "w: missing field \"data_offsets\"");
  EXPECT_REJECTED(one("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}", 8), "w: unknown field \"x\"");
}

TEST(SafetensorsCorruption, OffsetsMustTileTheDataSection) {
  const std::string a = "\"a\":" + entry("\"F32\"", "[2]", "[0,8]");
  EXPECT_REJECTED(file_of("{" + a + ",\"b\":" + entry("\"F32\"", "[2]", "[4,12]") + "}", 12),
                  "b: data_offsets [4, 12] overlap the previous tensor, which ends at 8");
  EXPECT_REJECTED(file_of("{" + a + ",\"b\":" + entry("\"F32\"", "[2]", "[0,8]") + "}", 8),
                  "overlap the previous tensor");
  EXPECT_REJECTED(file_of("{" + a + ",\"b\":" + entry("\"F32\"", "[1]", "[12,16]") + "}", 16),
                  "b: data_offsets [12, 16] leave a gap after offset 8");
  EXPECT_REJECTED(file_of("{" + a + "}", 9), "the data section is 9 bytes but the tensors cover 8");
  EXPECT_REJECTED(file_of("{}", 4), "the data section is 4 bytes but the tensors cover 0");
  // Listed out of data order is fine (the format does not order the header).
  EXPECT_EQ(decode_error(file_of("{\"b\":" + entry("\"F32\"", "[1]", "[8,12]") + "," + a + "}", 12)), "(accepted)");
}

TEST(SafetensorsCorruption, DuplicateNamesAndBadMetadataAreRejected) {
  const std::string a = "\"a\":" + entry("\"F32\"", "[2]", "[0,8]");
  EXPECT_REJECTED(file_of("{" + a + "," + a + "}", 8), "duplicate key \"a\"");
  EXPECT_REJECTED(file_of("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0), "duplicate key \"k\"");
  EXPECT_REJECTED(file_of("{\"__metadata__\":{\"k\":1}}", 0), "__metadata__ value of \"k\" is 1, not a string");
  EXPECT_REJECTED(file_of("{\"__metadata__\":[]}", 0), "__metadata__ is [], not an object");
  // Nested objects may repeat the keys of their siblings.
  EXPECT_EQ(decode_error(file_of("{" + a + ",\"b\":" + entry("\"F32\"", "[0]", "[8,8]") + "}", 8)), "(accepted)");
}

TEST(SafetensorsCorruption, BnormKeysAreChecked) {
  const std::string a = "\"a\":" + entry("\"U8\"", "[1]", "[0,1]");
  auto with_meta = [&](const std::string& meta) { return file_of("{" + a + ",\"__metadata__\":{" + meta + "}}", 1); };
  EXPECT_REJECTED(with_meta("\"bnorm.format\":\"2\""), "unsupported bnorm.format \"2\" (this build reads 1)");
  EXPECT_REJECTED(with_meta("\"bnorm.format\":\"1\",\"bnorm.header_crc32\":\"00000000\""),
                  "a bnorm file without its bnorm.data_crc32 key");
  EXPECT_REJECTED(with_meta("\"bnorm.format\":\"1\",\"bnorm.data_crc32\":\"d202ef8d\""),
                  "a bnorm file without its bnorm.header_crc32 key");
  // crc32 of the single byte 0x00 is d202ef8d: a foreign file may carry our data checksum alone.
  EXPECT_EQ(decode_error(with_meta("\"bnorm.data_crc32\":\"d202ef8d\"")), "(accepted)");
  EXPECT_REJECTED(with_meta("\"bnorm.data_crc32\":\"D202EF8D\""), "data checksum mismatch");
}

}  // namespace
}  // namespace bnorm
