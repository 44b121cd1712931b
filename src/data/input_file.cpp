// Plain files through stdio, gzip files through zlib's gz* functions (which inflate straight
// into the caller's buffer for large reads, so a 47 MB IDX file costs one pass).
#include "bnorm/data/input_file.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace bnorm {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

}  // namespace

InputFile::InputFile(const std::string& path) : path_(path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, "cannot open: it is a directory");
  file_ = std::fopen(path.c_str(), "rb");
  if (!file_) fail(path, std::string("cannot open: ") + std::strerror(errno));
  size_on_disk_ = std::filesystem::file_size(path, ec);
  if (ec) size_on_disk_ = 0;

  unsigned char magic[2] = {0, 0};
  const std::size_t got = std::fread(magic, 1, 2, file_);
  if (got == 2 && magic[0] == 0x1f && magic[1] == 0x8b) {
    std::fclose(file_);
    file_ = nullptr;
    gz_ = gzopen(path.c_str(), "rb");
    if (!gz_) fail(path, std::string("cannot open: ") + std::strerror(errno));
    gzbuffer(gz_, 1 << 17);
  } else {
    std::rewind(file_);
  }
}

InputFile::~InputFile() {
  if (file_) std::fclose(file_);
  if (gz_) gzclose(gz_);
}

std::size_t InputFile::read(void* buffer, std::size_t count) {
  auto* out = static_cast<unsigned char*>(buffer);
  std::size_t total = 0;
  if (file_) {
    total = std::fread(out, 1, count, file_);
    if (total < count && std::ferror(file_)) fail(path_, std::string("read error: ") + std::strerror(errno));
    return total;
  }
  while (total < count) {
    // gzread takes an unsigned count and returns an int: read at most 1 GiB at a time.
    const auto chunk = static_cast<unsigned>(std::min<std::size_t>(count - total, 1u << 30));
    const int got = gzread(gz_, out + total, chunk);
    int code = Z_OK;
    const char* message = gzerror(gz_, &code);
    if (got < 0 || (code != Z_OK && code != Z_STREAM_END)) {
      // Z_BUF_ERROR is zlib's "unexpected end of file": the compressed stream was cut short.
      fail(path_, std::string(code == Z_BUF_ERROR ? "truncated gzip data (" : "corrupt gzip data (") +
                      (message ? message : "?") + ")");
    }
    total += static_cast<std::size_t>(got);
    if (static_cast<unsigned>(got) < chunk) break;  // end of data
  }
  return total;
}

std::uint64_t InputFile::count_remaining() {
  std::vector<unsigned char> sink(1 << 16);
  std::uint64_t total = 0;
  for (;;) {
    const std::size_t got = read(sink.data(), sink.size());
    total += got;
    if (got < sink.size()) return total;
  }
}

std::vector<std::uint8_t> read_whole_file(const std::string& path, std::uint64_t max_bytes) {
  InputFile file(path);
  std::vector<std::uint8_t> bytes;
  if (!file.is_gzip()) {
    if (file.size_on_disk() > max_bytes)
      fail(path, "has " + std::to_string(file.size_on_disk()) + " bytes, more than the limit " +
                     std::to_string(max_bytes));
    bytes.resize(file.size_on_disk());
    bytes.resize(file.read(bytes.data(), bytes.size()));
    return bytes;
  }
  // Decompressed size unknown: grow geometrically.
  std::size_t used = 0;
  bytes.resize(std::min<std::uint64_t>(std::max<std::uint64_t>(file.size_on_disk() * 4, 1 << 16),
                                        max_bytes + 1));
  for (;;) {
    used += file.read(bytes.data() + used, bytes.size() - used);
    if (used > max_bytes)
      fail(path, "decompresses to more than the limit of " + std::to_string(max_bytes) + " bytes");
    if (used < bytes.size()) break;
    bytes.resize(std::min<std::uint64_t>(bytes.size() * 2, max_bytes + 1));
  }
  bytes.resize(used);
  return bytes;
}

}  // namespace bnorm
