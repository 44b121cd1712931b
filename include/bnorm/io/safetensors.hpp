// bnorm/io/safetensors.hpp: the safetensors file format (https://huggingface.co/docs/safetensors),
// with which bnorm stores models and checkpoints.
//
// Layout of a file:
//   8 bytes      N, the header length, unsigned little-endian
//   N bytes      UTF-8 JSON: {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
//                ..., "__metadata__": {"<key>": "<string>", ...}}; may end in spaces (the
//                writer pads so that the data section starts at a multiple of 8)
//   the rest     the data section: each tensor's raw little-endian bytes at [b, e), offsets
//                relative to the section's start, packed in order with no gaps.
// bnorm adds three metadata keys, which the writer sets and the reader checks and removes:
//   "bnorm.format"        "1": the version of bnorm's conventions;
//   "bnorm.data_crc32"    zlib crc32 of the whole data section, 8 lowercase hex digits;
//   "bnorm.header_crc32"  crc32 of the compact JSON dump of the header without this key (the
//                         header as written, less padding), so that a flipped byte in a name,
//                         a shape or the model spec is caught as surely as one in the data.
// Files from other tools (Python's safetensors, PyTorch) lack them and load all the same; a
// file with "bnorm.format" must carry both checksums.
//
// The reader trusts nothing: every way a header can disagree with itself or with the file
// (short file, oversized header length, bad JSON, duplicate names, unknown dtype, negative or
// overflowing shape, offsets that overlap, leave gaps or run out of range, a data section of
// the wrong length, a checksum mismatch) throws std::runtime_error naming the file and the
// problem. Writers check their input and throw std::invalid_argument.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "bnorm/io/named_tensor.hpp"

namespace bnorm {

// String metadata: the model spec, input shape, training options... (keys are chosen by the
// callers; the three keys above are reserved).
using Metadata = std::map<std::string, std::string>;

inline constexpr const char* format_metadata_key = "bnorm.format";
inline constexpr const char* data_checksum_metadata_key = "bnorm.data_crc32";
inline constexpr const char* header_checksum_metadata_key = "bnorm.header_crc32";
inline constexpr const char* format_version = "1";

struct SafetensorsFile {
  std::string source;                // the path (or a caller's label) for error messages
  std::vector<NamedTensor> tensors;  // in data-section order
  Metadata metadata;                 // without the two reserved keys
  bool checksum_verified = false;    // whether the file carried bnorm's checksums (they matched)

  // nullptr when absent.
  const NamedTensor* find(const std::string& name) const;
  // Throws std::runtime_error "<source>: no tensor named <name>".
  const NamedTensor& at(const std::string& name) const;
  // Throws std::runtime_error "<source>: no metadata key <key>".
  const std::string& metadata_at(const std::string& key) const;
};

// The whole file as bytes. Tensors are stored in the order given; names must be unique,
// non-empty and not "__metadata__"; each tensor's byte count must match its dtype and shape.
std::vector<std::byte> encode_safetensors(std::span<const NamedTensor> tensors, const Metadata& metadata = {});
// Parses and validates `bytes`; `source` names them in error messages.
SafetensorsFile decode_safetensors(std::span<const std::byte> bytes, const std::string& source);

// encode + write_file_atomically (bnorm/io/file.hpp), streaming the tensors without a copy.
void save_safetensors(const std::filesystem::path& path, std::span<const NamedTensor> tensors,
                      const Metadata& metadata = {});
// read_file_bytes + decode.
SafetensorsFile load_safetensors(const std::filesystem::path& path);

}  // namespace bnorm
