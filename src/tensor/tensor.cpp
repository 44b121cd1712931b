#include "bnorm/tensor/tensor.hpp"

#include "tensor/host_allocator.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <stdexcept>

namespace bnorm {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
  }
  throw std::invalid_argument("unknown dtype");
}

const char* to_string(DType dtype) {
  switch (dtype) {
    case DType::f32: return "f32";
  }
  return "?";
}

const char* to_string(Device device) {
  switch (device) {
    case Device::cpu: return "cpu";
  }
  return "?";
}

const char* to_string(Layout layout) {
  return layout == Layout::channels_first ? "channels_first" : "channels_last";
}

Shape::Shape(std::initializer_list<std::int64_t> dims) : Shape(std::vector<std::int64_t>(dims)) {}

Shape::Shape(const std::vector<std::int64_t>& dims) {
  if (dims.empty() || dims.size() > static_cast<std::size_t>(max_rank))
    throw std::invalid_argument("bnorm: a shape has 1 to " + std::to_string(max_rank) +
                                " dimensions, got " + std::to_string(dims.size()));
  rank_ = static_cast<int>(dims.size());
  for (int i = 0; i < rank_; ++i) {
    if (dims[i] < 0)
      throw std::invalid_argument("bnorm: negative extent " + std::to_string(dims[i]) +
                                  " in dimension " + std::to_string(i));
    dims_[i] = dims[i];
  }
}

std::int64_t Shape::operator[](int axis) const {
  if (axis < 0 || axis >= rank_)
    throw std::out_of_range("bnorm: axis " + std::to_string(axis) + " out of range for " +
                            to_string());
  return dims_[axis];
}

std::int64_t Shape::numel() const {
  if (rank_ == 0) return 0;
  std::int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[i];
  return n;
}

std::string Shape::to_string() const {
  std::ostringstream out;
  out << '(';
  for (int i = 0; i < rank_; ++i) out << (i ? ", " : "") << dims_[i];
  out << ')';
  return out.str();
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[i] != other.dims_[i]) return false;
  return true;
}

Tensor Tensor::empty(const Shape& shape, Layout layout, DType dtype, Device device) {
  Tensor t;
  t.shape_ = shape;
  t.layout_ = layout;
  t.dtype_ = dtype;
  t.device_ = device;
  // Round up so that the last SIMD vector of a tensor never reads past its allocation.
  std::size_t bytes = (t.nbytes() + tensor_alignment - 1) / tensor_alignment * tensor_alignment;
  if (bytes == 0) bytes = tensor_alignment;
  t.storage_ = std::shared_ptr<std::byte>(static_cast<std::byte*>(detail::allocate_host(bytes)),
                                          [bytes](std::byte* p) { detail::free_host(p, bytes); });
  return t;
}

Tensor Tensor::zeros(const Shape& shape, Layout layout) {
  Tensor t = empty(shape, layout);
  std::memset(t.storage_.get(), 0, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value, Layout layout) {
  Tensor t = empty(shape, layout);
  float* p = t.data_f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = value;
  return t;
}

Tensor Tensor::view_of(float* data, const Shape& shape, Layout layout) {
  Tensor t;
  t.shape_ = shape;
  t.layout_ = layout;
  t.storage_ = std::shared_ptr<std::byte>(reinterpret_cast<std::byte*>(data), [](std::byte*) {});
  return t;
}

Tensor Tensor::reshaped(const Shape& shape, Layout layout) const {
  if (!defined()) throw std::logic_error("bnorm: reshaped() of an undefined tensor");
  if (shape.numel() != numel())
    throw std::invalid_argument("bnorm: cannot reshape " + describe() + " to " + shape.to_string() +
                                ": " + std::to_string(numel()) + " vs " +
                                std::to_string(shape.numel()) + " elements");
  Tensor t = *this;
  t.shape_ = shape;
  t.layout_ = layout;
  return t;
}

float* Tensor::data_f32() {
  return const_cast<float*>(static_cast<const Tensor&>(*this).data_f32());
}

const float* Tensor::data_f32() const {
  if (!defined()) throw std::logic_error("bnorm: data of an undefined tensor");
  if (dtype_ != DType::f32 || device_ != Device::cpu)
    throw std::invalid_argument("bnorm: asked for f32 cpu data of a " + describe() + " tensor");
  return reinterpret_cast<const float*>(storage_.get());
}

std::string Tensor::describe() const {
  return shape_.to_string() + " " + bnorm::to_string(dtype_) + " " + bnorm::to_string(layout_) +
         " " + bnorm::to_string(device_);
}

}  // namespace bnorm
