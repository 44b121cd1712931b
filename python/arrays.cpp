// The NumPy boundary of the `bnorm` Python module; the rules are in arrays.hpp.
#include "arrays.hpp"

#include <cstring>
#include <stdexcept>

namespace bnorm::python {

namespace {

constexpr int aligned_flag = py::detail::npy_api::NPY_ARRAY_ALIGNED_;

bool is_contiguous_and_aligned(const py::array& a) {
  return (a.flags() & py::array::c_style) && (a.flags() & aligned_flag);
}

// One fresh C-contiguous, aligned copy (np.array(a, order="C", copy=True)).
py::array contiguous_copy(const py::array& a) {
  return py::module_::import("numpy").attr("array")(a, py::arg("order") = "C",
                                                     py::arg("copy") = true);
}

// The array behind `object`, which must be an ndarray of `dtype_name`; TypeError for a
// non-array (a list is not converted: its dtype would be float64), ValueError for a dtype.
template <typename T>
py::array checked_array(const py::handle& object, const std::string& what,
                        const char* dtype_name, const std::string& expected) {
  if (!py::isinstance<py::array>(object))
    throw py::type_error(what + ": expected a numpy.ndarray of dtype " + dtype_name +
                         " shaped " + expected + ", got " + describe_object(object));
  if (!py::isinstance<py::array_t<T>>(object))
    throw py::value_error(what + ": expected dtype " + dtype_name + " shaped " + expected +
                          ", got " + describe_object(object) + " (convert explicitly with .astype(np." +
                          dtype_name + "); bnorm does not cast silently)");
  return py::reinterpret_borrow<py::array>(object);
}

}  // namespace

std::string dims_string(const Dims& dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  if (dims.size() == 1) s += ",";
  return s + ")";
}

Dims dims_of(const py::array& array) {
  return Dims(array.shape(), array.shape() + array.ndim());
}

std::string describe_object(const py::handle& object) {
  if (py::isinstance<py::array>(object)) {
    const auto a = py::reinterpret_borrow<py::array>(object);
    return "a " + py::str(a.dtype()).cast<std::string>() + " array of shape " +
           dims_string(dims_of(a));
  }
  if (object.is_none()) return "None";
  return "a " + py::str(py::type::handle_of(object).attr("__name__")).cast<std::string>();
}

std::string expected_pattern(int rank, std::int64_t channels, bool channels_last) {
  const std::string c = channels > 0 ? std::to_string(channels) : "C";
  static const char* spatial[6][3] = {{}, {}, {}, {"L"}, {"H", "W"}, {"D", "H", "W"}};
  std::string inner;
  for (int i = 0; i < rank - 2; ++i) inner += std::string(", ") + spatial[rank][i];
  if (rank == 2) return "(N, " + c + ")";
  return channels_last ? "(N" + inner + ", " + c + ")" : "(N, " + c + inner + ")";
}

FloatArray data_array(const py::handle& object, const std::string& what,
                      const std::string& expected) {
  py::array a = checked_array<float>(object, what, "float32", expected);
  if (a.ndim() < 2 || a.ndim() > 5)
    throw py::value_error(what + ": expected shape " + expected + ", got " +
                          describe_object(object));
  if (!is_contiguous_and_aligned(a)) a = contiguous_copy(a);
  return py::reinterpret_borrow<FloatArray>(a);
}

Shape logical_shape(const Dims& physical, bool channels_last) {
  if (!channels_last || physical.size() <= 2) return Shape(physical);
  // (N, s1, ..., sk, C) -> (N, C, s1, ..., sk)
  Dims logical{physical.front(), physical.back()};
  logical.insert(logical.end(), physical.begin() + 1, physical.end() - 1);
  return Shape(logical);
}

Layout layout_of(bool channels_last) {
  return channels_last ? Layout::channels_last : Layout::channels_first;
}

Tensor tensor_view(const FloatArray& array, bool channels_last) {
  // view_of takes a mutable pointer; inputs viewed this way are only read by the kernels.
  return Tensor::view_of(const_cast<float*>(array.data()),
                         logical_shape(dims_of(array), channels_last), layout_of(channels_last));
}

py::array to_numpy(Tensor tensor, const Dims& physical) {
  auto* owner = new Tensor(std::move(tensor));
  py::capsule base(owner, [](void* p) { delete static_cast<Tensor*>(p); });
  return FloatArray(std::vector<py::ssize_t>(physical.begin(), physical.end()), owner->data_f32(),
                    base);
}

FloatArray channel_array(const py::handle& object, std::int64_t channels, const std::string& what) {
  const std::string expected = "(" + std::to_string(channels) + ",)";
  py::array a = checked_array<float>(object, what, "float32", expected);
  if (dims_of(a) != Dims{channels})
    throw py::value_error(what + ": expected shape " + expected + ", got " + describe_object(object));
  if (!is_contiguous_and_aligned(a)) a = contiguous_copy(a);
  return py::reinterpret_borrow<FloatArray>(a);
}

float* writable_channel_array(const py::handle& object, std::int64_t channels,
                              const std::string& what) {
  const std::string expected = "(" + std::to_string(channels) + ",)";
  py::array a = checked_array<float>(object, what, "float32", expected);
  if (dims_of(a) != Dims{channels})
    throw py::value_error(what + ": expected shape " + expected + ", got " + describe_object(object));
  if (!a.writeable() || !is_contiguous_and_aligned(a))
    throw py::value_error(what + " is updated in place, so it must be a writable, contiguous "
                          "float32 array (a copy would lose the update), got " +
                          describe_object(object));
  return static_cast<float*>(a.mutable_data());
}

DoubleArray channel_array_f64(const py::handle& object, std::int64_t channels,
                              const std::string& what) {
  const std::string expected = "(" + std::to_string(channels) + ",)";
  py::array a = checked_array<double>(object, what, "float64", expected);
  if (dims_of(a) != Dims{channels})
    throw py::value_error(what + ": expected shape " + expected + ", got " + describe_object(object));
  if (!is_contiguous_and_aligned(a)) a = contiguous_copy(a);
  return py::reinterpret_borrow<DoubleArray>(a);
}

FloatArray copy_of(const float* data, std::int64_t count) {
  FloatArray out(count);
  std::memcpy(out.mutable_data(), data, static_cast<std::size_t>(count) * sizeof(float));
  return out;
}

}  // namespace bnorm::python
