// bnorm/data/input_file.hpp: reading a file that may be gzip-compressed.
//
// Whether a file is compressed is decided by its first two bytes (the gzip magic 1f 8b), never
// by its name: "train-images-idx3-ubyte" may hold gzip data and "x.gz" may be plain. Errors are
// std::runtime_error that start with the path ("data/x.gz: cannot open: No such file or
// directory"; "data/x.gz: corrupt gzip data: invalid distance too far back").
//
// Not here: any file format. The IDX and CIFAR readers build on this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

struct gzFile_s;  // zlib's handle; the public headers do not include zlib.h

namespace bnorm {

class InputFile {
 public:
  // Opens `path` for reading; throws if it cannot be opened.
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  bool is_gzip() const { return gz_ != nullptr; }
  // Bytes on disk (the compressed size for gzip files).
  std::uint64_t size_on_disk() const { return size_on_disk_; }

  // Reads up to `count` bytes into `buffer` and returns how many were read: fewer than `count`
  // only at the end of the (decompressed) data. Throws on read errors and corrupt or truncated
  // gzip streams.
  std::size_t read(void* buffer, std::size_t count);
  // Reads to the end and returns how many bytes were left (the data is discarded).
  std::uint64_t count_remaining();

 private:
  std::string path_;
  std::FILE* file_ = nullptr;  // plain files
  gzFile_s* gz_ = nullptr;     // gzip files
  std::uint64_t size_on_disk_ = 0;
};

// The whole (decompressed) content of a file. Throws when it has more than `max_bytes`.
std::vector<std::uint8_t> read_whole_file(const std::string& path,
                                          std::uint64_t max_bytes = std::uint64_t{1} << 32);

}  // namespace bnorm
