// bnorm/io/named_tensor.hpp: one named, typed array as it is stored in a model file or checkpoint.
//
// A NamedTensor is the unit that safetensors files hold: a name ("conv1.weight",
// "optimizer.conv1.weight.exp_avg", "rng.state"), an element type, a shape (any rank, including
// 0 for a scalar) and the raw little-endian bytes in logical (row-major, PyTorch) order. It
// is deliberately separate from Tensor: a file also holds integer counters and RNG words, and
// a Tensor's memory may be channels-last while a file always stores the logical order.
//
// The helpers below make one from a Tensor or from plain values, and read one back with its
// type and shape checked; a mismatch throws std::runtime_error naming the tensor and printing
// both descriptions ("fc.weight: expected F32 (10, 100), got F32 (100, 10)").
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bnorm/tensor/tensor.hpp"

namespace bnorm {

// The element types bnorm writes and reads, spelled in files as safetensors does.
enum class StoredDType : std::uint8_t { f32, i64, u64, u8 };
std::size_t stored_dtype_size(StoredDType dtype);
const char* to_string(StoredDType dtype);  // "F32", "I64", "U64", "U8"

struct NamedTensor {
  std::string name;
  StoredDType dtype = StoredDType::f32;
  std::vector<std::int64_t> shape;  // empty: a scalar (one element)
  std::vector<std::byte> bytes;     // numel * element size, little-endian, logical order

  // Product of the extents (1 for a scalar); throws std::invalid_argument on a negative
  // extent or overflow.
  std::int64_t numel() const;
  // "F32 (64, 32, 3, 3)"; a scalar is "I64 ()".
  std::string describe() const;
};

// "(64, 32, 3, 3)", "()" for a scalar: the format of Shape::to_string.
std::string shape_to_string(const std::vector<std::int64_t>& shape);

// --- making one
// F32, the tensor's logical shape, its values in logical order (a channels-last tensor is
// transposed to N, C, spatial order, as PyTorch would save it).
NamedTensor named_tensor(std::string name, const Tensor& tensor);
// T: float (F32), std::int64_t (I64), std::uint64_t (U64), std::uint8_t (U8). values.size()
// must equal the shape's element count.
template <class T>
NamedTensor named_values(std::string name, std::vector<std::int64_t> shape, std::span<const T> values);
// I64 with shape () (PyTorch's num_batches_tracked).
NamedTensor named_scalar_i64(std::string name, std::int64_t value);

// --- reading one back (each checks dtype and shape and throws std::runtime_error)
template <class T>
std::vector<T> values_of(const NamedTensor& stored, const std::vector<std::int64_t>& expected_shape);
std::int64_t scalar_i64_of(const NamedTensor& stored);
// Copies an F32 tensor of exactly destination's logical shape into destination (in its layout).
void copy_into(const NamedTensor& stored, Tensor& destination);
// A new tensor of the stored F32 values (rank 1..5).
Tensor tensor_of(const NamedTensor& stored, Layout layout = Layout::channels_first);

}  // namespace bnorm
