// Atomic whole-file writes (bnorm/io/file.hpp): the target holds either the old or the new
// contents, never a mix, and no temporary is left behind, whatever fails.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "bnorm/io/file.hpp"

namespace bnorm {
namespace {

namespace fs = std::filesystem;

std::span<const std::byte> as_bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

std::string read_text(const fs::path& path) {
  const std::vector<std::byte> bytes = read_file_bytes(path);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("bnorm_io_file_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Everything in the directory except `keep`: must be empty after every write.
  std::vector<std::string> strays(const std::string& keep) const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_))
      if (entry.path().filename() != keep) names.push_back(entry.path().filename().string());
    return names;
  }

  fs::path dir_;
};

struct CallbackFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

TEST_F(AtomicFile, CreatesThenReplacesTheTarget) {
  const fs::path target = dir_ / "model.safetensors";
  write_file_atomically(target, as_bytes("first contents"));
  EXPECT_EQ(read_text(target), "first contents");
  write_file_atomically(target, as_bytes("second, longer contents"));
  EXPECT_EQ(read_text(target), "second, longer contents");
  write_file_atomically(target, as_bytes(""));
  EXPECT_EQ(read_text(target), "");
  EXPECT_TRUE(strays("model.safetensors").empty());
}

TEST_F(AtomicFile, WritesThroughATemporaryBesideTheTarget) {
  const fs::path target = dir_ / "ckpt.safetensors";
  write_file_atomically(target, as_bytes("old"));
  write_file_atomically(target, [&](FileSink& sink) {
    sink.write(as_bytes("new "));
    // Mid-write: the target still has the old contents and the new ones go to a temporary
    // named <name>.tmp.<pid>.<16 hex digits> in the same directory.
    EXPECT_EQ(read_text(target), "old");
    const std::vector<std::string> temporaries = strays("ckpt.safetensors");
    ASSERT_EQ(temporaries.size(), 1u);
    const std::string prefix = "ckpt.safetensors.tmp." + std::to_string(::getpid()) + ".";
    EXPECT_EQ(temporaries[0].rfind(prefix, 0), 0u) << temporaries[0];
    EXPECT_EQ(temporaries[0].size(), prefix.size() + 16) << temporaries[0];
    sink.write(as_bytes("contents"));
    EXPECT_EQ(sink.bytes_written(), 12u);
  });
  EXPECT_EQ(read_text(target), "new contents");
  EXPECT_TRUE(strays("ckpt.safetensors").empty());
}

TEST_F(AtomicFile, ACallbackThatThrowsMidwayLeavesTheOldFileAndNoTemporary) {
  const fs::path target = dir_ / "model.safetensors";
  const std::string old_contents(10000, 'x');
  write_file_atomically(target, as_bytes(old_contents));
  EXPECT_THROW(write_file_atomically(target,
                                     [&](FileSink& sink) {
                                       sink.write(as_bytes(std::string(5000, 'y')));
                                       throw CallbackFailure("disk full (simulated)");
                                     }),
               CallbackFailure);  // rethrown unchanged
  EXPECT_EQ(read_text(target), old_contents);
  EXPECT_TRUE(strays("model.safetensors").empty());
}

TEST_F(AtomicFile, ACallbackThatThrowsCreatesNothing) {
  const fs::path target = dir_ / "new.safetensors";
  EXPECT_THROW(write_file_atomically(target, [](FileSink&) { throw CallbackFailure("no"); }), CallbackFailure);
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(strays("").empty());
}

TEST_F(AtomicFile, AMissingDirectoryIsReportedWithPathAndReason) {
  const fs::path target = dir_ / "no_such_dir" / "model.safetensors";
  try {
    write_file_atomically(target, as_bytes("x"));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(target.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file or directory"), std::string::npos) << e.what();
  }
}

TEST_F(AtomicFile, ATargetThatIsADirectoryFailsAtRenameAndCleansUp) {
  const fs::path target = dir_ / "occupied";
  fs::create_directories(target / "inside");
  try {
    write_file_atomically(target, as_bytes("x"));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot rename"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(target.string()), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_directory(target / "inside"));
  EXPECT_TRUE(strays("occupied").empty());
}

TEST_F(AtomicFile, ReadingAMissingFileOrADirectoryThrowsWithThePath) {
  for (const fs::path& path : {dir_ / "absent.safetensors", dir_}) {
    try {
      read_file_bytes(path);
      FAIL() << "expected an exception for " << path;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
  }
}

TEST_F(AtomicFile, BinaryContentsSurviveExactly) {
  std::string all_bytes;
  for (int i = 0; i < 256 * 40; ++i) all_bytes.push_back(static_cast<char>(i * 7 + i / 256));
  const fs::path target = dir_ / "binary";
  write_file_atomically(target, as_bytes(all_bytes));
  EXPECT_EQ(read_text(target), all_bytes);
  EXPECT_EQ(fs::file_size(target), all_bytes.size());
}

}  // namespace
}  // namespace bnorm
