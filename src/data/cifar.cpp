// CIFAR-10 binary batches: split each 3073-byte record into its label and its planar pixels.
#include "bnorm/data/cifar.hpp"

#include <cstring>
#include <stdexcept>

#include "bnorm/data/input_file.hpp"

namespace bnorm {

CifarBatch read_cifar10_batch(const std::string& path) {
  // 1 GiB: the real batches are 30 MB each; more means a wrong file.
  const std::vector<std::uint8_t> bytes = read_whole_file(path, std::uint64_t{1} << 30);
  const auto size = static_cast<std::int64_t>(bytes.size());
  const std::string record_text = std::to_string(cifar10_record_bytes) + "-byte records (1 label byte + " +
                                  std::to_string(cifar10_pixels) + " pixel bytes)";
  if (size == 0) throw std::runtime_error(path + ": expected CIFAR-10 " + record_text + ", found an empty file");
  if (size % cifar10_record_bytes != 0)
    throw std::runtime_error(path + ": expected a whole number of CIFAR-10 " + record_text + ", found " +
                             std::to_string(size) + " bytes = " + std::to_string(size / cifar10_record_bytes) +
                             " records and " + std::to_string(size % cifar10_record_bytes) +
                             " bytes left over");
  CifarBatch batch;
  batch.count = size / cifar10_record_bytes;
  batch.pixels.resize(static_cast<std::size_t>(batch.count * cifar10_pixels));
  batch.labels.resize(static_cast<std::size_t>(batch.count));
  for (std::int64_t i = 0; i < batch.count; ++i) {
    const std::uint8_t* record = bytes.data() + i * cifar10_record_bytes;
    if (record[0] >= cifar10_classes)
      throw std::runtime_error(path + ": record " + std::to_string(i) + " has label " +
                               std::to_string(record[0]) + ", expected 0.." +
                               std::to_string(cifar10_classes - 1) +
                               " (is this CIFAR-100, with 2 label bytes per record?)");
    batch.labels[i] = record[0];
    std::memcpy(batch.pixels.data() + i * cifar10_pixels, record + 1, cifar10_pixels);
  }
  return batch;
}

}  // namespace bnorm
