// python/layer_bindings.cpp: bnorm.BatchNorm1d / 2d / 3d, wrapping bnorm::BatchNorm.
//
// The Python object owns the C++ layer plus what the layer cannot own itself: a reference
// to the NumPy array its saved input borrows (the layer keeps a view of forward's x for
// backward, so the array must stay alive until the next forward). Attributes are returned
// as copies (NumPy arrays that own their data), and set by copying in; unlike PyTorch,
// modifying a returned array in place does not change the layer.
//
// Threads: the GIL is released around every kernel call; a mutex per object serializes
// the calls that touch the layer, so two Python threads sharing one layer do not race.
// The mutex is only ever taken with the GIL released (never the other way round), so the
// two locks cannot deadlock.
#include <pybind11/stl.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "arrays.hpp"
#include "bindings.hpp"
#include "bnorm/layers/batchnorm.hpp"

namespace bnorm::python {

namespace {

class PyBatchNorm {
 private:
  // Runs f on the layer with the GIL released and the object's mutex held.
  template <typename F>
  auto with_layer(F&& f) {
    py::gil_scoped_release no_gil;
    std::lock_guard lock(mutex_);
    return f();
  }

 public:
  PyBatchNorm(const char* name, std::vector<int> ranks, std::int64_t num_features, double eps,
              std::optional<double> momentum, bool affine, bool track_running_stats,
              bool channels_last)
      : name_(name),
        ranks_(ranks),
        channels_last_(channels_last),
        layer_(name, std::move(ranks),
               {.num_features = num_features,
                .eps = eps,
                .momentum = momentum,
                .affine = affine,
                .track_running_stats = track_running_stats,
                .layout = layout_of(channels_last)}) {}

  PyBatchNorm(const PyBatchNorm&) = delete;
  PyBatchNorm& operator=(const PyBatchNorm&) = delete;
  // pybind11 destroys the object with the GIL held.
  ~PyBatchNorm() { Py_XDECREF(saved_input_); }

  py::array forward(const ArrayArg& x_object) {
    FloatArray x = data_array(x_object, prefix("forward") + "x", expected_shapes());
    const Dims dims = dims_of(x);
    check_input_dims(dims, "x");
    const Tensor x_view = tensor_view(x, channels_last_);
    // The layer will hold a view into x: keep x alive. The swap below moves only pointers
    // (no reference counting), so it is safe without the GIL; the previous input is
    // released when `keep` goes out of scope, after the GIL is back.
    auto keep = py::reinterpret_borrow<py::object>(x);
    Tensor y;
    {
      py::gil_scoped_release no_gil;
      std::lock_guard lock(mutex_);
      y = layer_.forward(x_view);
      PyObject* previous = saved_input_;
      saved_input_ = keep.release().ptr();
      keep = py::reinterpret_steal<py::object>(py::handle(previous));  // null or old input
      saved_dims_ = dims;
    }
    return to_numpy(std::move(y), dims);
  }

  py::array backward(const ArrayArg& dy_object) {
    FloatArray dy = data_array(dy_object, prefix("backward") + "dy", expected_shapes());
    const Dims dims = dims_of(dy);
    const Tensor dy_view = tensor_view(dy, channels_last_);
    Tensor dx;
    {
      py::gil_scoped_release no_gil;
      std::lock_guard lock(mutex_);
      if (!saved_input_)
        throw std::logic_error(prefix("backward") + "called before forward (nothing saved)");
      if (dims != saved_dims_)
        throw std::invalid_argument(prefix("backward") + "dy must have the shape of the last "
                                    "forward input " + dims_string(saved_dims_) + ", got " +
                                    dims_string(dims));
      dx = layer_.backward(dy_view);
    }
    return to_numpy(std::move(dx), dims);
  }

  void train(bool on) { with_layer([&] { layer_.train(on); }); }
  bool training() { return with_layer([&] { return layer_.is_training(); }); }
  void zero_grad() { with_layer([&] { layer_.zero_grad(); }); }
  void reset_running_stats() { with_layer([&] { layer_.reset_running_stats(); }); }

  // Attributes: None where PyTorch has None (affine off, no running statistics).
  // `member` is a BatchNorm accessor (weight, weight_grad, running_mean, ...).
  template <typename Member>
  py::object get(Member member) {
    const Tensor& t = (layer_.*member)();
    if (!t.defined()) return py::none();
    FloatArray out(t.numel());
    float* dst = out.mutable_data();
    with_layer([&] { std::memcpy(dst, t.data_f32(), t.nbytes()); });
    return out;
  }
  void set(Tensor& (BatchNorm::*member)(), const char* attribute, const py::handle& value) {
    Tensor& t = (layer_.*member)();
    if (!t.defined()) {
      const std::string name = attribute;
      throw py::attribute_error(prefix(attribute) + "does not exist (" +
                                (name == "weight" || name == "bias" ? "affine=False"
                                                                    : "track_running_stats=False") +
                                ")");
    }
    const FloatArray source = channel_array(value, options().num_features, where(attribute));
    const float* src = source.data();
    with_layer([&] { std::memcpy(t.data_f32(), src, t.nbytes()); });
  }

  py::object num_batches_tracked() {
    if (!options().track_running_stats) return py::none();
    return py::int_(with_layer([&] { return layer_.num_batches_tracked(); }));
  }
  void set_num_batches_tracked(const py::handle& value) {
    if (!options().track_running_stats)
      throw py::attribute_error(prefix("num_batches_tracked") +
                                "does not exist (track_running_stats=False)");
    if (!py::isinstance<py::int_>(value) || py::isinstance<py::bool_>(value))
      throw py::type_error(prefix("num_batches_tracked") + "expected an int, got " +
                           describe_object(value));
    const auto n = value.cast<std::int64_t>();
    if (n < 0) throw py::value_error(prefix("num_batches_tracked") + "must be >= 0, got " +
                                     std::to_string(n));
    with_layer([&] { layer_.set_num_batches_tracked(n); });
  }

  const BatchNormOptions& options() const { return layer_.options(); }  // immutable
  bool channels_last() const { return channels_last_; }

  std::string repr() const {
    const BatchNormOptions& o = options();
    std::string momentum = o.momentum ? py::repr(py::float_(*o.momentum)).cast<std::string>() : "None";
    return std::string(name_) + "(" + std::to_string(o.num_features) +
           ", eps=" + py::repr(py::float_(o.eps)).cast<std::string>() + ", momentum=" + momentum +
           ", affine=" + (o.affine ? "True" : "False") +
           ", track_running_stats=" + (o.track_running_stats ? "True" : "False") +
           (channels_last_ ? ", channels_last=True" : "") + ")";
  }

 private:
  // "BatchNorm2d(3).forward", and with ": " appended for messages.
  std::string where(const std::string& what) const {
    return std::string(name_) + "(" + std::to_string(options().num_features) +
           (channels_last_ ? ", channels_last=True" : "") + ")." + what;
  }
  std::string prefix(const std::string& what) const { return where(what) + ": "; }

  // "(N, 3, H, W)", "(N, 3) or (N, 3, L)".
  std::string expected_shapes() const {
    std::string expected;
    for (int r : ranks_)
      expected += (expected.empty() ? "" : " or ") +
                  expected_pattern(r, options().num_features, channels_last_);
    return expected;
  }

  void check_input_dims(const Dims& dims, const char* what) const {
    const int rank = static_cast<int>(dims.size());
    const std::int64_t channel_dim = channels_last_ ? dims.back() : dims[1];
    const bool rank_ok = std::find(ranks_.begin(), ranks_.end(), rank) != ranks_.end();
    if (!rank_ok || channel_dim != options().num_features)
      throw py::value_error(prefix("forward") + what + " must be a float32 array shaped " +
                            expected_shapes() + ", got shape " + dims_string(dims) +
                            (rank_ok ? " (" + std::to_string(channel_dim) + " channels)" : ""));
  }

  const char* name_;
  std::vector<int> ranks_;
  bool channels_last_;
  std::mutex mutex_;
  BatchNorm layer_;
  PyObject* saved_input_ = nullptr;  // owned reference to the array layer_ saved a view of
  Dims saved_dims_;                  // its physical shape
};

template <int Dim>
struct PyBatchNormNd : PyBatchNorm {
  static constexpr const char* name = Dim == 1 ? "BatchNorm1d" : Dim == 2 ? "BatchNorm2d" : "BatchNorm3d";
  static std::vector<int> ranks() {
    if constexpr (Dim == 1) return {2, 3};
    return {Dim + 2};
  }
  PyBatchNormNd(std::int64_t num_features, double eps, std::optional<double> momentum,
                bool affine, bool track_running_stats, bool channels_last)
      : PyBatchNorm(name, ranks(), num_features, eps, momentum, affine, track_running_stats,
                    channels_last) {}
};

const char* const class_doc_common = R"doc(

Parameters mirror torch.nn.BatchNorm{1,2,3}d:
  num_features         C, the number of channels
  eps                  added to the variance before the square root (default 1e-5)
  momentum             weight of the new batch in the running averages (default 0.1);
                       None means a cumulative average (factor 1/num_batches_tracked)
  affine               learn weight (gamma) and bias (beta); off: weight/bias are None
  track_running_stats  keep running_mean/running_var/num_batches_tracked; off: they are
                       None and batch statistics are used in eval mode too
  channels_last        inputs are (N, ..., C) instead of (N, C, ...); a contiguous array is
                       used in place as the channels-last tensor (no transpose, no copy)

Inputs are float32 numpy arrays (float64 raises ValueError; cast explicitly). An array that
is not C-contiguous is copied once. forward(x) keeps a reference to x for backward: do not
modify x in place before calling backward.

Attributes weight, bias, running_mean, running_var (float32, shape (C,)) and
num_batches_tracked (int) are read and written by copy: the returned arrays are copies,
and assigning copies in (shape and dtype are checked). weight_grad and bias_grad are
read-only copies; backward ADDS to them, zero_grad() clears them.
)doc";

template <int Dim>
void bind_class(py::module_& m, const char* shapes) {
  using Class = PyBatchNormNd<Dim>;
  const std::string doc = std::string(Class::name) + ": batch normalization over " + shapes +
                          " inputs." + class_doc_common;
  py::class_<Class, PyBatchNorm>(m, Class::name, doc.c_str())
      .def(py::init<std::int64_t, double, std::optional<double>, bool, bool, bool>(),
           py::arg("num_features"), py::arg("eps") = 1e-5, py::arg("momentum") = 0.1,
           py::arg("affine") = true, py::arg("track_running_stats") = true,
           py::arg("channels_last") = false);
}

}  // namespace

void bind_layers(py::module_& m) {
  using C = PyBatchNorm;
  py::class_<C>(m, "_BatchNorm", "Common base of BatchNorm1d, BatchNorm2d and BatchNorm3d.")
      .def("forward", &C::forward, py::arg("x"),
           "y = forward(x). Training mode (or track_running_stats=False): normalize with the "
           "batch statistics and, in training mode, update the running ones. Eval mode: "
           "normalize with the running statistics. Returns a new float32 array shaped like x.")
      .def("__call__", &C::forward, py::arg("x"), "Same as forward(x).")
      .def("backward", &C::backward, py::arg("dy"),
           "dx = backward(dy) for the last forward: returns dx and adds the parameter gradients "
           "to weight_grad / bias_grad. After an eval-mode forward with running statistics the "
           "statistics are constants (dx = weight * invstd * dy). RuntimeError before any "
           "forward; ValueError if dy is not shaped like that forward's input.")
      // Return the Python object itself (not a new non-owning wrapper of the C++ base).
      .def(
          "train",
          [](py::object self, bool mode) {
            self.cast<C&>().train(mode);
            return self;
          },
          py::arg("mode") = true, "Sets training mode (mode=True) or eval mode; returns self.")
      .def(
          "eval",
          [](py::object self) {
            self.cast<C&>().train(false);
            return self;
          },
          "Sets eval mode; returns self.")
      .def_property("training", &C::training, &C::train, "True in training mode.")
      .def("zero_grad", &C::zero_grad, "Sets weight_grad and bias_grad to zero.")
      .def("reset_running_stats", &C::reset_running_stats,
           "running_mean = 0, running_var = 1, num_batches_tracked = 0.")
      .def_property(
          "weight", [](C& self) { return self.get(&BatchNorm::weight); },
          [](C& self, const ArrayArg& v) { self.set(&BatchNorm::weight, "weight", v); },
          "gamma, float32 (C,), or None when affine=False. Returns / assigns a copy.")
      .def_property(
          "bias", [](C& self) { return self.get(&BatchNorm::bias); },
          [](C& self, const ArrayArg& v) { self.set(&BatchNorm::bias, "bias", v); },
          "beta, float32 (C,), or None when affine=False. Returns / assigns a copy.")
      .def_property(
          "running_mean", [](C& self) { return self.get(&BatchNorm::running_mean); },
          [](C& self, const ArrayArg& v) { self.set(&BatchNorm::running_mean, "running_mean", v); },
          "float32 (C,), or None when track_running_stats=False. Returns / assigns a copy.")
      .def_property(
          "running_var", [](C& self) { return self.get(&BatchNorm::running_var); },
          [](C& self, const ArrayArg& v) { self.set(&BatchNorm::running_var, "running_var", v); },
          "Unbiased running variance, float32 (C,), or None when track_running_stats=False.")
      .def_property("num_batches_tracked", &C::num_batches_tracked, &C::set_num_batches_tracked,
                    "Training batches seen (int), or None when track_running_stats=False.")
      .def_property_readonly(
          "weight_grad", [](C& self) { return self.get(&BatchNorm::weight_grad); },
          "Accumulated dL/dweight, float32 (C,) copy, or None when affine=False.")
      .def_property_readonly(
          "bias_grad", [](C& self) { return self.get(&BatchNorm::bias_grad); },
          "Accumulated dL/dbias, float32 (C,) copy, or None when affine=False.")
      .def_property_readonly("num_features", [](const C& self) { return self.options().num_features; })
      .def_property_readonly("eps", [](const C& self) { return self.options().eps; })
      .def_property_readonly("momentum", [](const C& self) { return self.options().momentum; })
      .def_property_readonly("affine", [](const C& self) { return self.options().affine; })
      .def_property_readonly("track_running_stats",
                             [](const C& self) { return self.options().track_running_stats; })
      .def_property_readonly("channels_last", &C::channels_last)
      .def("__repr__", &C::repr);

  bind_class<1>(m, "(N, C) and (N, C, L)");
  bind_class<2>(m, "(N, C, H, W)");
  bind_class<3>(m, "(N, C, D, H, W)");
}

}  // namespace bnorm::python
