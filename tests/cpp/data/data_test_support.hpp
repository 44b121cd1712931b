// data_test_support.hpp: fixtures for the data tests, written at run time into a private
// temporary folder (no binary files are committed): IDX files (plain and gzip'ed with zlib's
// gzwrite), CIFAR-10 records, small in-memory datasets, and an exception-message matcher.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "bnorm/data/dataset.hpp"
#include "bnorm/util/random.hpp"

namespace bnorm::testing {

using Bytes = std::vector<std::uint8_t>;

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "data") {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("bnorm-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline void write_gzip(const std::string& path, const Bytes& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr) << path;
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(gz), Z_OK);
}

inline void write_file(const std::string& path, const Bytes& bytes, bool gzip) {
  if (gzip) {
    write_gzip(path, bytes);
  } else {
    write_bytes(path, bytes);
  }
}

inline void append_be32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

// An IDX file image: magic 00 00 type rank, big-endian extents, then `values`.
inline Bytes idx_bytes(const std::vector<std::uint32_t>& dims, const Bytes& values, std::uint8_t type = 0x08) {
  Bytes out = {0, 0, type, static_cast<std::uint8_t>(dims.size())};
  for (std::uint32_t d : dims) append_be32(out, d);
  out.insert(out.end(), values.begin(), values.end());
  return out;
}

// Deterministic pixel bytes: every value 0..255 occurs.
inline Bytes pattern_bytes(std::size_t count, std::uint32_t salt = 0) {
  Bytes out(count);
  for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<std::uint8_t>((i * 37 + salt * 11 + i / 7) & 0xff);
  return out;
}

// Writes an MNIST-style folder of the four files (images n x rows x cols, labels i % classes).
inline void write_idx_folder(const std::string& dir, std::uint32_t train_n, std::uint32_t test_n,
                             std::uint32_t rows, std::uint32_t cols, bool gzip, std::uint32_t classes = 10) {
  std::filesystem::create_directories(dir);
  auto labels = [&](std::uint32_t n) {
    Bytes out(n);
    for (std::uint32_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(i % classes);
    return out;
  };
  const std::string ext = gzip ? ".gz" : "";
  write_file(dir + "/train-images-idx3-ubyte" + ext, idx_bytes({train_n, rows, cols}, pattern_bytes(train_n * rows * cols, 1)), gzip);
  write_file(dir + "/train-labels-idx1-ubyte" + ext, idx_bytes({train_n}, labels(train_n)), gzip);
  write_file(dir + "/t10k-images-idx3-ubyte" + ext, idx_bytes({test_n, rows, cols}, pattern_bytes(test_n * rows * cols, 2)), gzip);
  write_file(dir + "/t10k-labels-idx1-ubyte" + ext, idx_bytes({test_n}, labels(test_n)), gzip);
}

// CIFAR-10 records: label (i * 3 + salt) % 10, pixels from pattern_bytes.
inline Bytes cifar_bytes(std::size_t count, std::uint32_t salt = 0) {
  Bytes out;
  const Bytes pixels = pattern_bytes(count * 3072, salt);
  for (std::size_t i = 0; i < count; ++i) {
    out.push_back(static_cast<std::uint8_t>((i * 3 + salt) % 10));
    out.insert(out.end(), pixels.begin() + i * 3072, pixels.begin() + (i + 1) * 3072);
  }
  return out;
}

// A dataset whose pixel values encode (example, position): x[i][j] = i + j / 1000, so a batch
// says exactly which example and position each value came from. Label i % classes.
inline Dataset indexed_dataset(std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
                               std::int64_t classes = 10) {
  Dataset data;
  data.images = Tensor::empty(Shape{n, c, h, w});
  float* p = data.images.data_f32();
  const std::int64_t row = c * h * w;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < row; ++j) p[i * row + j] = static_cast<float>(i) + static_cast<float>(j) / 1000.0f;
  for (std::int64_t i = 0; i < n; ++i) data.labels.push_back(static_cast<std::int32_t>(i % classes));
  data.num_classes = classes;
  for (std::int64_t k = 0; k < classes; ++k) data.class_names.push_back(std::to_string(k));
  return data;
}

// Expects `f` to throw E with a message containing every one of `parts`.
template <class E = std::runtime_error>
void expect_error(const std::function<void()>& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "expected an exception containing \"" << *parts.begin() << "\"";
  } catch (const E& e) {
    const std::string message = e.what();
    for (const std::string& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "message: " << message << "\nmissing: " << part;
  }
}

}  // namespace bnorm::testing
