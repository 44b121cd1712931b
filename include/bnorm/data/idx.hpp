// bnorm/data/idx.hpp: the IDX file format of MNIST and Fashion-MNIST (LeCun et al.), plain or
// gzip-compressed (see input_file.hpp).
//
// Format: a 4-byte big-endian magic number 00 00 TT DD (TT the element type, 0x08 for unsigned
// bytes; DD the number of dimensions), DD big-endian u32 extents, then exactly prod(extents)
// elements in row-major order. Images are 0x00000803 (count, rows, columns), labels 0x00000801
// (count). Only unsigned bytes are read: that is what every image data set in this format uses.
//
// The reader checks everything a corrupt or mismatched file can get wrong and says, with the
// path, what it expected and what it found: the magic number, the type byte, the number of
// dimensions, each extent (not zero, not absurd), and the payload length (exact: truncated data
// and trailing bytes are both errors), e.g.
//   "train-images-idx3-ubyte.gz: expected 47040000 bytes of pixels after the header, found 1000"
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bnorm {

// Limits that keep a corrupt header from asking for absurd amounts of memory.
inline constexpr std::int64_t idx_max_extent = std::int64_t{1} << 30;
inline constexpr std::int64_t idx_max_bytes = std::int64_t{1} << 34;  // 16 GiB

inline constexpr std::uint8_t idx_type_u8 = 0x08;

struct IdxArray {
  std::vector<std::int64_t> dims;    // as stored: (count, rows, columns) or (count)
  std::vector<std::uint8_t> values;  // prod(dims) bytes, row-major
};

// Reads an unsigned-byte IDX file with `expected_rank` dimensions (3 for images, 1 for labels).
// Throws std::runtime_error on any mismatch (see the file comment).
IdxArray read_idx_u8(const std::string& path, int expected_rank);

}  // namespace bnorm
