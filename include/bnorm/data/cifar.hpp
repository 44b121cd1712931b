// bnorm/data/cifar.hpp: the binary version of CIFAR-10 (Krizhevsky 2009,
// https://www.cs.toronto.edu/~kriz/cifar.html): data_batch_1.bin ... data_batch_5.bin and
// test_batch.bin, each a sequence of records of 1 label byte (0..9) and 3072 pixel bytes: the
// 1024 red values of the 32x32 image row by row, then the green, then the blue (channel-planar,
// which is already (C, H, W) order). A file may also be gzip-compressed (input_file.hpp).
//
// Not here: CIFAR-100 (2 label bytes per record) and the Python pickles.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bnorm {

inline constexpr std::int64_t cifar10_channels = 3;
inline constexpr std::int64_t cifar10_height = 32;
inline constexpr std::int64_t cifar10_width = 32;
inline constexpr std::int64_t cifar10_pixels = cifar10_channels * cifar10_height * cifar10_width;
inline constexpr std::int64_t cifar10_record_bytes = 1 + cifar10_pixels;  // 3073
inline constexpr std::int64_t cifar10_classes = 10;

struct CifarBatch {
  std::int64_t count = 0;
  std::vector<std::uint8_t> pixels;   // count * 3072, (N, 3, 32, 32)
  std::vector<std::int32_t> labels;   // count, in 0..9
};

// Throws std::runtime_error with the path when the file is empty, is not a whole number of
// 3073-byte records, or holds a label outside 0..9 (with the record's index).
CifarBatch read_cifar10_batch(const std::string& path);

}  // namespace bnorm
