// Atomic whole-file writes and whole-file reads (bnorm/io/file.hpp), on POSIX file descriptors
// so that every failing call can be reported with its strerror.
#include "bnorm/io/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <utility>
#include <stdexcept>

namespace bnorm {
namespace {

[[noreturn]] void throw_errno(const std::string& what, const std::string& path, int error) {
  throw std::runtime_error("bnorm: " + what + " " + path + ": " + std::strerror(error));
}

// Closes a descriptor on scope exit unless released; close errors here are secondary ones.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string random_suffix() {
  // random_device is enough: the name only has to differ from concurrent writers' names, and
  // O_EXCL below catches the unlikely clash.
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  char buffer[17];
  std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(generator()));
  return buffer;
}

// Creates "<name>.tmp.<pid>.<random>" beside `target` with O_EXCL; returns its descriptor.
int create_temporary(const std::filesystem::path& target, std::string& temporary_path) {
  for (int attempt = 0;; ++attempt) {
    temporary_path = target.string() + ".tmp." + std::to_string(::getpid()) + "." + random_suffix();
    const int fd = ::open(temporary_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST || attempt == 16)
      throw_errno("cannot create a temporary file to write", target.string() + " (" + temporary_path + ")", errno);
  }
}

void fsync_directory(const std::filesystem::path& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open directory to sync", directory.string(), errno);
  FdGuard guard(fd);
  if (::fsync(fd) != 0) throw_errno("cannot sync directory", directory.string(), errno);
}

}  // namespace

void FileSink::write(const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", path_, errno);
    }
    p += n;
    size -= static_cast<std::size_t>(n);
    bytes_written_ += static_cast<std::uint64_t>(n);
  }
}

void write_file_atomically(const std::filesystem::path& path,
                           const std::function<void(FileSink&)>& write_contents) {
  if (path.empty()) throw std::invalid_argument("bnorm: write_file_atomically: empty path");
  std::string temporary;
  FdGuard fd(create_temporary(path, temporary));
  try {
    FileSink sink(fd.get(), temporary);
    write_contents(sink);
    if (::fsync(fd.get()) != 0) throw_errno("cannot sync", temporary, errno);
    // close() can report a deferred write error (NFS, quotas): it must succeed too.
    if (::close(fd.release()) != 0) throw_errno("cannot close", temporary, errno);
    if (::rename(temporary.c_str(), path.c_str()) != 0)
      throw_errno("cannot rename " + temporary + " to", path.string(), errno);
  } catch (...) {
    ::unlink(temporary.c_str());
    throw;
  }
  // The new contents are in place; this makes the rename itself durable.
  const std::filesystem::path parent = path.parent_path();
  fsync_directory(parent.empty() ? std::filesystem::path(".") : parent);
}

void write_file_atomically(const std::filesystem::path& path, std::span<const std::byte> contents) {
  write_file_atomically(path, [&](FileSink& sink) { sink.write(contents); });
}

std::vector<std::byte> read_file_bytes(const std::filesystem::path& path) {
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) throw_errno("cannot open", path.string(), errno);
  FdGuard fd(raw);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) throw_errno("cannot stat", path.string(), errno);
  if (S_ISDIR(info.st_mode)) throw_errno("cannot read", path.string(), EISDIR);
  std::vector<std::byte> bytes(static_cast<std::size_t>(info.st_size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", path.string(), errno);
    }
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

}  // namespace bnorm
