// bnorm/data/dataset.hpp: a labelled image data set held in memory, and its loaders.
//
// A Dataset is every example at once: images as one (N, C, H, W) float32 channels-first tensor
// with pixel values in [0, 1] (byte / 255, as torchvision's ToTensor), and one int32 label per
// example. Fashion-MNIST's 60000 training images take 188 MB this way; the data sets this
// library targets fit in memory, and one contiguous tensor makes gathering a batch a few memcpy.
// Copying a Dataset is cheap: the copies share the image memory (Tensor is a shared handle).
//
// Loaders throw std::runtime_error naming the file and what was expected and found.
// Not here: standardization (standardize.hpp), validation splits (split.hpp), batches
// (loader.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bnorm/tensor/tensor.hpp"

namespace bnorm {

struct Dataset {
  Tensor images;                       // (N, C, H, W) f32 channels_first, pixel / 255
  std::vector<std::int32_t> labels;    // N, each in [0, num_classes)
  std::int64_t num_classes = 0;
  std::vector<std::string> class_names;  // num_classes entries ("0", "1", ... when unknown)

  std::int64_t size() const { return static_cast<std::int64_t>(labels.size()); }
  std::int64_t channels() const { return images.dim(1); }
  std::int64_t height() const { return images.dim(2); }
  std::int64_t width() const { return images.dim(3); }
  std::int64_t example_numel() const { return channels() * height() * width(); }
  // "60000 examples of (1, 28, 28), 10 classes"
  std::string describe() const;
  // Throws std::invalid_argument unless the fields agree with each other as documented above.
  void validate() const;
};

// The folder the command-line tool and the examples read when given none.
inline constexpr const char* default_dataset_dir = "/usr/share/datasets/fashion-mnist";

// Class names, in label order.
const std::vector<std::string>& fashion_mnist_class_names();  // "T-shirt/top", ..., "Ankle boot"
const std::vector<std::string>& mnist_class_names();          // "0", ..., "9"
const std::vector<std::string>& cifar10_class_names();        // "airplane", ..., "truck"

// An IDX pair (idx.hpp): images (N, rows, cols) -> (N, 1, rows, cols) and N labels.
// num_classes is the largest label + 1 and the class names are the label numbers.
// Throws when the counts differ.
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path);
// Only the images of an IDX file: (N, 1, rows, cols), pixel / 255 (what `bnorm predict` reads).
Tensor load_idx_images(const std::string& images_path);

// CIFAR-10 binary batches (cifar.hpp), concatenated in the given order: (N, 3, 32, 32).
Dataset load_cifar10_dataset(const std::vector<std::string>& batch_paths);

struct TrainTestData {
  Dataset train;
  Dataset test;
  std::string name;  // "fashion-mnist", "mnist" (IDX files) or "cifar-10"
};

// Loads the train and test splits of a folder holding either
//   the four MNIST-style IDX files, each plain or gzip'ed (".gz" added to the name):
//     train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte
//     (the dotted spelling "train-images.idx3-ubyte" is accepted too), or
//   the CIFAR-10 binary batches data_batch_1.bin ... data_batch_5.bin and test_batch.bin,
//     directly in the folder or in its subfolder cifar-10-batches-bin.
// IDX folders whose path contains "fashion" (any case) get Fashion-MNIST's class names and are
// named "fashion-mnist"; other IDX folders get the digits and are named "mnist". num_classes is
// then at least 10. Throws, listing every name looked for, when the folder has neither set.
TrainTestData load_dataset_folder(const std::string& dir = default_dataset_dir);

}  // namespace bnorm
