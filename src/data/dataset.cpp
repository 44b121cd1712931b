// Dataset checks, class names, and the IDX / CIFAR-10 / folder loaders.
#include "bnorm/data/dataset.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "bnorm/data/cifar.hpp"
#include "bnorm/data/idx.hpp"

namespace bnorm {
namespace {

// byte / 255 through a table: exactly torchvision's ToTensor values, and faster than dividing.
void bytes_to_unit_floats(const std::uint8_t* bytes, std::int64_t count, float* out) {
  std::array<float, 256> table;
  for (int v = 0; v < 256; ++v) table[v] = static_cast<float>(v) / 255.0f;
#pragma omp parallel for schedule(static) if (count > (1 << 20))
  for (std::int64_t i = 0; i < count; ++i) out[i] = table[bytes[i]];
}

std::vector<std::string> numbered_names(std::int64_t count) {
  std::vector<std::string> names;
  for (std::int64_t i = 0; i < count; ++i) names.push_back(std::to_string(i));
  return names;
}

std::string lowercase(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool is_file(const std::filesystem::path& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

}  // namespace

std::string Dataset::describe() const {
  std::ostringstream out;
  out << size() << " examples of ";
  if (images.defined() && images.rank() == 4)
    out << '(' << channels() << ", " << height() << ", " << width() << ')';
  else
    out << (images.defined() ? images.describe() : std::string("no images"));
  out << ", " << num_classes << " classes";
  return out.str();
}

void Dataset::validate() const {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument("Dataset (" + describe() + "): " + what);
  };
  if (!images.defined() || images.rank() != 4) fail("images must be a rank-4 (N, C, H, W) tensor");
  if (images.layout() != Layout::channels_first) fail("images must be channels_first, got " + images.describe());
  if (images.dim(0) != size())
    fail("images " + images.describe() + " but " + std::to_string(size()) + " labels");
  if (num_classes < 1) fail("num_classes must be at least 1");
  if (!class_names.empty() && static_cast<std::int64_t>(class_names.size()) != num_classes)
    fail(std::to_string(class_names.size()) + " class names for " + std::to_string(num_classes) + " classes");
  for (std::int64_t i = 0; i < size(); ++i)
    if (labels[i] < 0 || labels[i] >= num_classes)
      fail("label " + std::to_string(labels[i]) + " of example " + std::to_string(i) +
           " is outside [0, " + std::to_string(num_classes) + ")");
}

const std::vector<std::string>& fashion_mnist_class_names() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

const std::vector<std::string>& mnist_class_names() {
  static const std::vector<std::string> names = numbered_names(10);
  return names;
}

const std::vector<std::string>& cifar10_class_names() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

Tensor load_idx_images(const std::string& images_path) {
  const IdxArray images = read_idx_u8(images_path, 3);
  Tensor out = Tensor::empty(Shape{images.dims[0], 1, images.dims[1], images.dims[2]});
  bytes_to_unit_floats(images.values.data(), out.numel(), out.data_f32());
  return out;
}

Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path) {
  Dataset data;
  data.images = load_idx_images(images_path);
  const IdxArray labels = read_idx_u8(labels_path, 1);
  if (data.images.dim(0) != labels.dims[0])
    throw std::runtime_error(images_path + " holds " + std::to_string(data.images.dim(0)) + " images but " +
                             labels_path + " holds " + std::to_string(labels.dims[0]) +
                             " labels: expected one label per image");
  data.labels.assign(labels.values.begin(), labels.values.end());
  data.num_classes = *std::max_element(labels.values.begin(), labels.values.end()) + 1;
  data.class_names = numbered_names(data.num_classes);
  return data;
}

Dataset load_cifar10_dataset(const std::vector<std::string>& batch_paths) {
  if (batch_paths.empty()) throw std::invalid_argument("load_cifar10_dataset: no batch files given");
  std::vector<CifarBatch> batches;
  std::int64_t n = 0;
  for (const std::string& path : batch_paths) {
    batches.push_back(read_cifar10_batch(path));
    n += batches.back().count;
  }
  Dataset data;
  data.images = Tensor::empty(Shape{n, cifar10_channels, cifar10_height, cifar10_width});
  float* out = data.images.data_f32();
  for (const CifarBatch& batch : batches) {
    bytes_to_unit_floats(batch.pixels.data(), static_cast<std::int64_t>(batch.pixels.size()), out);
    out += batch.pixels.size();
    data.labels.insert(data.labels.end(), batch.labels.begin(), batch.labels.end());
  }
  data.num_classes = cifar10_classes;
  data.class_names = cifar10_class_names();
  return data;
}

TrainTestData load_dataset_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw std::runtime_error(dir + ": not a directory (expected a folder with Fashion-MNIST/MNIST IDX "
                                   "files or CIFAR-10 binary batches)");
  std::vector<std::string> looked_for;

  // IDX: each of the four files under any of its usual spellings.
  auto find_idx = [&](const std::string& split, const std::string& kind) -> std::string {
    const std::string rank = kind == "images" ? "3" : "1";
    for (const char* sep : {"-", "."}) {
      const std::string base = split + "-" + kind + sep + "idx" + rank + "-ubyte";
      for (const std::string& name : {base, base + ".gz"})
        if (is_file(fs::path(dir) / name)) return (fs::path(dir) / name).string();
    }
    looked_for.push_back(split + "-" + kind + "-idx" + rank + "-ubyte[.gz]");
    return {};
  };
  const std::string train_images = find_idx("train", "images");
  const std::string train_labels = find_idx("train", "labels");
  const std::string test_images = find_idx("t10k", "images");
  const std::string test_labels = find_idx("t10k", "labels");
  const bool has_idx = !train_images.empty() && !train_labels.empty() && !test_images.empty() && !test_labels.empty();
  if (has_idx) {
    TrainTestData data{.train = load_idx_dataset(train_images, train_labels),
                       .test = load_idx_dataset(test_images, test_labels)};
    const bool fashion = lowercase(fs::absolute(dir, ec).string()).find("fashion") != std::string::npos;
    data.name = fashion ? "fashion-mnist" : "mnist";
    const std::int64_t classes = std::max<std::int64_t>({data.train.num_classes, data.test.num_classes, 10});
    for (Dataset* split : {&data.train, &data.test}) {
      split->num_classes = classes;
      split->class_names = classes == 10 ? (fashion ? fashion_mnist_class_names() : mnist_class_names())
                                         : numbered_names(classes);
    }
    return data;
  }

  // CIFAR-10 binary batches, in the folder or in the folder the archive unpacks to.
  for (const fs::path& folder : {fs::path(dir), fs::path(dir) / "cifar-10-batches-bin"}) {
    std::vector<std::string> train_paths;
    for (int i = 1; i <= 5; ++i) train_paths.push_back((folder / ("data_batch_" + std::to_string(i) + ".bin")).string());
    const std::string test_path = (folder / "test_batch.bin").string();
    const bool complete = is_file(test_path) &&
                          std::all_of(train_paths.begin(), train_paths.end(), [](const std::string& p) { return is_file(p); });
    if (complete)
      return {.train = load_cifar10_dataset(train_paths), .test = load_cifar10_dataset({test_path}), .name = "cifar-10"};
  }
  looked_for.push_back("data_batch_1.bin ... data_batch_5.bin and test_batch.bin (also in cifar-10-batches-bin/)");

  std::string message = dir + ": found neither a complete MNIST-style IDX set nor CIFAR-10 binary batches; missing:";
  for (const std::string& name : looked_for) message += "\n  " + name;
  throw std::runtime_error(message);
}

}  // namespace bnorm
