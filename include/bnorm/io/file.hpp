// bnorm/io/file.hpp: whole-file reads and crash-safe (atomic) whole-file writes.
//
// write_file_atomically gives the guarantee every model file and checkpoint relies on: after
// it returns, `path` holds exactly the new contents, durably; if it throws (or the process or
// machine dies midway), `path` still holds exactly what it held before (or still does not
// exist). It writes a temporary file beside the target ("<name>.tmp.<pid>.<random>", same
// directory so that the rename stays on one file system), fsyncs it, renames it over the
// target (atomic on POSIX) and fsyncs the directory so that the rename itself survives a power
// loss. On failure the temporary is removed and the error names the path and strerror. (The
// one failure that comes after the rename, syncing the directory, is reported too; the new
// contents are then already in place, but may not survive a power loss.)
//
// Not handled: the new file gets default permissions (0666 & ~umask), not the old file's; a
// symbolic link at `path` is replaced by a regular file rather than followed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace bnorm {

// Where the content callback of write_file_atomically writes. Every write either completes or
// throws std::runtime_error (path + strerror).
class FileSink {
 public:
  FileSink(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void write(const void* data, std::size_t size);
  void write(std::span<const std::byte> bytes) { write(bytes.data(), bytes.size()); }
  std::uint64_t bytes_written() const { return bytes_written_; }

 private:
  int fd_;
  std::string path_;  // the temporary's path, for error messages
  std::uint64_t bytes_written_ = 0;
};

// Calls write_contents once with a sink on a fresh temporary file, then publishes it at
// `path` as described above. Any exception from write_contents aborts the write (target
// untouched, temporary removed) and is rethrown unchanged.
void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(FileSink&)>& write_contents);
void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> contents);

// The whole file. Throws std::runtime_error with the path and strerror.
std::vector<std::byte> read_file_bytes(const std::filesystem::path& path);

}  // namespace bnorm
