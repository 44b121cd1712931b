// bnorm/tensor/tensor.hpp: the tensor core.
//
// A Tensor is a contiguous block of memory (64-byte aligned when the tensor owns it) plus a description of it:
// logical shape (always in PyTorch's order: N, C, then spatial D, H, W), memory layout
// (channels-first = N,C,... or channels-last = N,...,C), element type and device.
// It is deliberately small: there are no strides beyond what the layout implies and
// no implicit conversions, so an operation never makes a hidden copy. dtype and device
// are explicit fields from day one so that bf16/fp16 and CUDA can be added without
// changing callers; today only f32 on the CPU exists, and asking a tensor of another
// kind for float data throws.
//
// Not here: arithmetic. Kernels (bnorm/kernels) work on raw buffers plus a descriptor.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace bnorm {

inline constexpr int max_rank = 5;
inline constexpr std::size_t tensor_alignment = 64;  // one cache line, one AVX-512 register

enum class DType : std::uint8_t { f32 };  // bf16 and f16 are planned
enum class Device : std::uint8_t { cpu };  // cuda is planned
// Where the channel axis lives in memory. The logical shape does not change with it.
enum class Layout : std::uint8_t {
  channels_first,  // N, C, D, H, W  (PyTorch's default, "nchw")
  channels_last,   // N, D, H, W, C  ("nhwc")
};

std::size_t dtype_size(DType dtype);
const char* to_string(DType dtype);
const char* to_string(Device device);
const char* to_string(Layout layout);  // "channels_first" / "channels_last"

// Logical extents in PyTorch order (N, C, spatial...). Rank 1..5.
class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(const std::vector<std::int64_t>& dims);

  int rank() const { return rank_; }
  std::int64_t operator[](int axis) const;
  std::int64_t numel() const;
  std::vector<std::int64_t> dims() const { return {dims_.begin(), dims_.begin() + rank_}; }
  std::string to_string() const;  // "(32, 64, 56, 56)"
  bool operator==(const Shape& other) const;

 private:
  std::array<std::int64_t, max_rank> dims_{};
  int rank_ = 0;
};

// Tensor storage of 256 KiB and more is kept for reuse when freed, up to 1 GiB in all, so that
// a training step does not take fresh pages from the kernel for every activation (see
// src/tensor/host_allocator.hpp). This frees what is kept.
void release_cached_tensor_memory();

// Owns (or, for views of foreign memory, borrows) one contiguous buffer.
class Tensor {
 public:
  Tensor() = default;

  // Uninitialized, aligned storage.
  static Tensor empty(const Shape& shape, Layout layout = Layout::channels_first,
                      DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, Layout layout = Layout::channels_first);
  static Tensor full(const Shape& shape, float value, Layout layout = Layout::channels_first);
  // Borrows `data` (no copy); the caller keeps it alive while the tensor is used. Such a
  // view is only as aligned as `data` (float alignment, e.g. for NumPy arrays): kernels
  // must not assume more than element alignment.
  static Tensor view_of(float* data, const Shape& shape, Layout layout = Layout::channels_first);

  bool defined() const { return static_cast<bool>(storage_); }
  const Shape& shape() const { return shape_; }
  Layout layout() const { return layout_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  int rank() const { return shape_.rank(); }
  std::int64_t dim(int axis) const { return shape_[axis]; }
  std::int64_t numel() const { return shape_.numel(); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }

  // Typed access; throws if the tensor is not f32 on the CPU.
  float* data_f32();
  const float* data_f32() const;

  // The same storage (no copy) under another shape with the same number of elements, e.g.
  // Flatten's (N, C, H, W) -> (N, C*H*W). Elements keep their memory order; `layout` only
  // says how the new shape is laid over it. Throws std::invalid_argument if numel differs.
  Tensor reshaped(const Shape& shape, Layout layout = Layout::channels_first) const;

  // "(32, 64, 56, 56) f32 channels_last cpu": for error messages.
  std::string describe() const;

 private:
  std::shared_ptr<std::byte> storage_;
  Shape shape_;
  Layout layout_ = Layout::channels_first;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
};

}  // namespace bnorm
