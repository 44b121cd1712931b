// NamedTensor helpers (bnorm/io/named_tensor.hpp): conversions between Tensors or plain values
// and the bytes a model file stores, with the dtype and shape checks done in one place.
#include "bnorm/io/named_tensor.hpp"

#include <bit>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace bnorm {

static_assert(std::endian::native == std::endian::little,
              "bnorm model files are little-endian and are copied without byte swapping");

namespace {

template <class T> constexpr StoredDType stored_dtype_of();
template <> constexpr StoredDType stored_dtype_of<float>() { return StoredDType::f32; }
template <> constexpr StoredDType stored_dtype_of<std::int64_t>() { return StoredDType::i64; }
template <> constexpr StoredDType stored_dtype_of<std::uint64_t>() { return StoredDType::u64; }
template <> constexpr StoredDType stored_dtype_of<std::uint8_t>() { return StoredDType::u8; }

std::string description(StoredDType dtype, const std::vector<std::int64_t>& shape) {
  return std::string(to_string(dtype)) + " " + shape_to_string(shape);
}

void check_stored(const NamedTensor& stored, StoredDType dtype, const std::vector<std::int64_t>& shape) {
  if (stored.dtype != dtype || stored.shape != shape)
    throw std::runtime_error("bnorm: " + stored.name + ": expected " + description(dtype, shape) +
                             ", got " + stored.describe());
  const std::size_t expected_bytes = static_cast<std::size_t>(stored.numel()) * stored_dtype_size(dtype);
  if (stored.bytes.size() != expected_bytes)
    throw std::runtime_error("bnorm: " + stored.name + ": " + stored.describe() + " needs " +
                             std::to_string(expected_bytes) + " bytes, holds " +
                             std::to_string(stored.bytes.size()));
}

// Channels-last memory is (N, spatial..., C); the logical order is (N, C, spatial...). For
// rank < 3 the two coincide. `to_logical` picks the direction of the copy.
void copy_between_layouts(const float* from, float* to, const Shape& shape, Layout layout, bool to_logical) {
  const std::int64_t count = shape.numel();
  if (count == 0) return;  // `from` may be null (an empty vector's data)
  if (layout == Layout::channels_first || shape.rank() < 3) {
    std::memcpy(to, from, static_cast<std::size_t>(count) * sizeof(float));
    return;
  }
  const std::int64_t n = shape[0], c = shape[1];
  const std::int64_t spatial = (n == 0 || c == 0) ? 0 : count / (n * c);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = 0; ch < c; ++ch)
      for (std::int64_t s = 0; s < spatial; ++s) {
        const std::int64_t logical = (i * c + ch) * spatial + s;
        const std::int64_t memory = (i * spatial + s) * c + ch;
        if (to_logical) to[logical] = from[memory];
        else to[memory] = from[logical];
      }
}

}  // namespace

std::size_t stored_dtype_size(StoredDType dtype) {
  switch (dtype) {
    case StoredDType::f32: return 4;
    case StoredDType::i64: return 8;
    case StoredDType::u64: return 8;
    case StoredDType::u8: return 1;
  }
  throw std::invalid_argument("bnorm: unknown stored dtype");
}

const char* to_string(StoredDType dtype) {
  switch (dtype) {
    case StoredDType::f32: return "F32";
    case StoredDType::i64: return "I64";
    case StoredDType::u64: return "U64";
    case StoredDType::u8: return "U8";
  }
  return "?";
}

std::string shape_to_string(const std::vector<std::int64_t>& shape) {
  std::ostringstream out;
  out << '(';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << ')';
  return out.str();
}

std::int64_t NamedTensor::numel() const {
  std::int64_t count = 1;
  for (const std::int64_t extent : shape) {
    if (extent < 0)
      throw std::invalid_argument("bnorm: " + name + ": negative extent in shape " + shape_to_string(shape));
    if (__builtin_mul_overflow(count, extent, &count))
      throw std::invalid_argument("bnorm: " + name + ": element count of shape " +
                                  shape_to_string(shape) + " overflows");
  }
  return count;
}

std::string NamedTensor::describe() const { return description(dtype, shape); }

NamedTensor named_tensor(std::string name, const Tensor& tensor) {
  NamedTensor stored{.name = std::move(name), .dtype = StoredDType::f32, .shape = tensor.shape().dims()};
  stored.bytes.resize(tensor.nbytes());
  copy_between_layouts(tensor.data_f32(), reinterpret_cast<float*>(stored.bytes.data()), tensor.shape(),
                       tensor.layout(), /*to_logical=*/true);
  return stored;
}

template <class T>
NamedTensor named_values(std::string name, std::vector<std::int64_t> shape, std::span<const T> values) {
  NamedTensor stored{.name = std::move(name), .dtype = stored_dtype_of<T>(), .shape = std::move(shape)};
  if (static_cast<std::uint64_t>(stored.numel()) != values.size())
    throw std::invalid_argument("bnorm: " + stored.name + ": shape " + shape_to_string(stored.shape) +
                                " holds " + std::to_string(stored.numel()) + " values, got " +
                                std::to_string(values.size()));
  stored.bytes.resize(values.size_bytes());
  if (!values.empty()) std::memcpy(stored.bytes.data(), values.data(), values.size_bytes());
  return stored;
}

NamedTensor named_scalar_i64(std::string name, std::int64_t value) {
  return named_values<std::int64_t>(std::move(name), {}, std::span<const std::int64_t>(&value, 1));
}

template <class T>
std::vector<T> values_of(const NamedTensor& stored, const std::vector<std::int64_t>& expected_shape) {
  check_stored(stored, stored_dtype_of<T>(), expected_shape);
  std::vector<T> values(stored.bytes.size() / sizeof(T));
  if (!values.empty()) std::memcpy(values.data(), stored.bytes.data(), stored.bytes.size());
  return values;
}

std::int64_t scalar_i64_of(const NamedTensor& stored) { return values_of<std::int64_t>(stored, {}).front(); }

void copy_into(const NamedTensor& stored, Tensor& destination) {
  check_stored(stored, StoredDType::f32, destination.shape().dims());
  copy_between_layouts(reinterpret_cast<const float*>(stored.bytes.data()), destination.data_f32(),
                       destination.shape(), destination.layout(), /*to_logical=*/false);
}

Tensor tensor_of(const NamedTensor& stored, Layout layout) {
  if (stored.dtype != StoredDType::f32 || stored.shape.empty() ||
      stored.shape.size() > static_cast<std::size_t>(max_rank))
    throw std::runtime_error("bnorm: " + stored.name + ": expected F32 of rank 1 to " +
                             std::to_string(max_rank) + ", got " + stored.describe());
  Tensor tensor = Tensor::empty(Shape(stored.shape), layout);
  copy_into(stored, tensor);
  return tensor;
}

#define BNORM_INSTANTIATE(T)                                                                      \
  template NamedTensor named_values<T>(std::string, std::vector<std::int64_t>, std::span<const T>); \
  template std::vector<T> values_of<T>(const NamedTensor&, const std::vector<std::int64_t>&);
BNORM_INSTANTIATE(float)
BNORM_INSTANTIATE(std::int64_t)
BNORM_INSTANTIATE(std::uint64_t)
BNORM_INSTANTIATE(std::uint8_t)
#undef BNORM_INSTANTIATE

}  // namespace bnorm
