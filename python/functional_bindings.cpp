// python/functional_bindings.cpp: bnorm.functional, the kernels as stateless functions.
//
// Each function checks its arrays (arrays.hpp), allocates its outputs and the kernel
// workspace (kernels never allocate), releases the GIL and calls one entry point of
// bnorm/kernels/batchnorm.hpp. The conventions are the kernels': momentum is the weight
// of the new batch, running_var is unbiased, normalization uses the biased variance.
// Unlike the kernels, parameter gradients are returned as fresh arrays (accumulating into
// zeros), which is the Pythonic contract.
#include <pybind11/stl.h>

#include <algorithm>
#include <array>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "bnorm/kernels/batchnorm.hpp"

namespace bnorm::python {

namespace {

std::string where(const char* function) { return std::string("bnorm.functional.") + function; }

// An input (x or dy) with its problem descriptor.
struct Input {
  FloatArray array;
  Dims dims;
  BatchNormProblem problem;
};

Input input(const py::handle& object, const std::string& what, bool channels_last) {
  FloatArray array = data_array(object, what, channels_last ? "(N, ..., C)" : "(N, C, ...)");
  Dims dims = dims_of(array);
  const BatchNormProblem problem =
      BatchNormProblem::from_shape(logical_shape(dims, channels_last), layout_of(channels_last));
  return {std::move(array), std::move(dims), problem};
}

FloatArray new_array(const Dims& dims) {
  return FloatArray(std::vector<py::ssize_t>(dims.begin(), dims.end()));
}

FloatArray filled(std::int64_t count, float value) {
  FloatArray out(count);
  std::fill_n(out.mutable_data(), count, value);
  return out;
}

// weight and bias: both, one (the other defaults to ones / zeros, as in PyTorch), or none.
struct Affine {
  std::optional<FloatArray> weight, bias;
  const float* gamma() const { return weight ? weight->data() : nullptr; }
  const float* beta() const { return bias ? bias->data() : nullptr; }
};

Affine affine(const py::handle& weight, const py::handle& bias, std::int64_t channels,
              const std::string& where) {
  if (weight.is_none() && bias.is_none()) return {};
  Affine a;
  a.weight = weight.is_none() ? filled(channels, 1.0f) : channel_array(weight, channels, where + ": weight");
  a.bias = bias.is_none() ? filled(channels, 0.0f) : channel_array(bias, channels, where + ": bias");
  return a;
}

// The running-statistics update requested by running_mean/running_var (both or neither).
RunningStatsUpdate running_update(const py::handle& running_mean, const py::handle& running_var,
                                  std::optional<double> momentum,
                                  std::optional<std::int64_t> num_batches_tracked,
                                  std::int64_t channels, const std::string& where) {
  if (running_mean.is_none() && running_var.is_none()) return {};
  if (running_mean.is_none() || running_var.is_none())
    throw py::value_error(where + ": give both running_mean and running_var, or neither");
  if (momentum && !(*momentum >= 0.0 && *momentum <= 1.0))
    throw py::value_error(where + ": momentum must be in [0, 1] or None, got " +
                          std::to_string(*momentum));
  if (!momentum && !num_batches_tracked)
    throw py::value_error(where + ": momentum=None (cumulative average) needs "
                          "num_batches_tracked, the number of batches including this one");
  return {.mean = writable_channel_array(running_mean, channels, where + ": running_mean"),
          .var = writable_channel_array(running_var, channels, where + ": running_var"),
          .factor = running_average_factor(momentum, num_batches_tracked.value_or(1))};
}

// (count, mean, m2) as produced by moments().
struct Moments {
  std::int64_t count = 0;
  DoubleArray mean, m2;
  // The kernels take non-const pointers; inputs viewed this way are only read.
  ChannelMoments view() const {
    return {.count = count, .mean = const_cast<double*>(mean.data()), .m2 = const_cast<double*>(m2.data())};
  }
  py::tuple to_tuple() const { return py::make_tuple(count, mean, m2); }
};

Moments parse_moments(const py::handle& object, std::int64_t channels, const std::string& what) {
  if (!py::isinstance<py::tuple>(object) || py::len(object) != 3)
    throw py::type_error(what + ": expected a tuple (count, mean, m2) as returned by moments(), got " +
                         describe_object(object));
  const auto t = py::reinterpret_borrow<py::tuple>(object);
  if (!py::isinstance<py::int_>(t[0]) || t[0].cast<std::int64_t>() < 0)
    throw py::value_error(what + ": count must be an int >= 0, got " + py::repr(t[0]).cast<std::string>());
  if (channels < 0) {  // take C from the mean array
    if (!py::isinstance<py::array>(t[1]) || py::reinterpret_borrow<py::array>(t[1]).ndim() != 1)
      throw py::value_error(what + ": mean must be a float64 array of shape (C,), got " +
                            describe_object(t[1]));
    channels = py::reinterpret_borrow<py::array>(t[1]).shape(0);
  }
  return {t[0].cast<std::int64_t>(), channel_array_f64(t[1], channels, what + ": mean"),
          channel_array_f64(t[2], channels, what + ": m2")};
}

// stores="automatic" | "cached" | "streaming" (OutputStores).
OutputStores output_stores(const std::string& name, const std::string& where) {
  try {
    return parse_output_stores(name);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(where + ": " + e.what());
  }
}

DoubleArray copy_f64(const DoubleArray& a) {
  DoubleArray out(a.size());
  std::copy_n(a.data(), a.size(), out.mutable_data());
  return out;
}

py::tuple batch_norm_train(const ArrayArg& x_object, const OptionalArrayArg& weight,
                           const OptionalArrayArg& bias, const OptionalArrayArg& running_mean,
                           const OptionalArrayArg& running_var, std::optional<double> momentum,
                           std::optional<std::int64_t> num_batches_tracked, double eps,
                           bool channels_last, const std::string& stores) {
  const std::string at = where("batch_norm_train");
  const Input x = input(x_object, at + ": x", channels_last);
  const std::int64_t c = x.problem.channels;
  const Affine params = affine(weight, bias, c, at);
  const RunningStatsUpdate running =
      running_update(running_mean, running_var, momentum, num_batches_tracked, c, at);
  FloatArray y = new_array(x.dims);
  FloatArray save_mean(c), save_invstd(c);
  std::vector<std::byte> workspace(batchnorm_workspace_bytes(x.problem));
  const BatchNormForwardTrainArgs args{.problem = x.problem,
                                       .eps = eps,
                                       .x = x.array.data(),
                                       .gamma = params.gamma(),
                                       .beta = params.beta(),
                                       .y = y.mutable_data(),
                                       .save_mean = save_mean.mutable_data(),
                                       .save_invstd = save_invstd.mutable_data(),
                                       .running = running,
                                       .workspace = workspace,
                                       .stores = output_stores(stores, at)};
  {
    py::gil_scoped_release no_gil;
    batchnorm_forward_train(args);
  }
  return py::make_tuple(y, save_mean, save_invstd);
}

py::array batch_norm_infer(const ArrayArg& x_object, const ArrayArg& mean,
                           const OptionalArrayArg& var, const OptionalArrayArg& weight,
                           const OptionalArrayArg& bias, double eps, bool channels_last,
                           const OptionalArrayArg& invstd, const std::string& stores) {
  const std::string at = where("batch_norm_infer");
  const Input x = input(x_object, at + ": x", channels_last);
  const std::int64_t c = x.problem.channels;
  if (var.is_none() == invstd.is_none())
    throw py::value_error(at + ": give exactly one of running_var and invstd");
  const FloatArray mean_array = channel_array(mean, c, at + ": running_mean");
  std::optional<FloatArray> var_array, invstd_array;
  if (!var.is_none()) var_array = channel_array(var, c, at + ": running_var");
  if (!invstd.is_none()) invstd_array = channel_array(invstd, c, at + ": invstd");
  const Affine params = affine(weight, bias, c, at);
  FloatArray y = new_array(x.dims);
  const BatchNormForwardInferArgs args{.problem = x.problem,
                                       .eps = eps,
                                       .x = x.array.data(),
                                       .mean = mean_array.data(),
                                       .var = var_array ? var_array->data() : nullptr,
                                       .invstd = invstd_array ? invstd_array->data() : nullptr,
                                       .gamma = params.gamma(),
                                       .beta = params.beta(),
                                       .y = y.mutable_data(),
                                       .stores = output_stores(stores, at)};
  {
    py::gil_scoped_release no_gil;
    batchnorm_forward_infer(args);
  }
  return y;
}

py::tuple batch_norm_backward(const ArrayArg& x_object, const ArrayArg& dy_object,
                              const ArrayArg& save_mean, const ArrayArg& save_invstd,
                              const OptionalArrayArg& weight, bool frozen, bool channels_last,
                              std::array<bool, 3> output_mask, const std::string& stores) {
  const std::string at = where("batch_norm_backward");
  const Input x = input(x_object, at + ": x", channels_last);
  const Input dy = input(dy_object, at + ": dy", channels_last);
  if (dy.dims != x.dims)
    throw py::value_error(at + ": dy must be shaped like x " + dims_string(x.dims) + ", got " +
                          dims_string(dy.dims));
  const std::int64_t c = x.problem.channels;
  const FloatArray mean = channel_array(save_mean, c, at + ": save_mean");
  const FloatArray invstd = channel_array(save_invstd, c, at + ": save_invstd");
  std::optional<FloatArray> gamma;
  if (!weight.is_none()) gamma = channel_array(weight, c, at + ": weight");
  std::optional<FloatArray> dx, dweight, dbias;
  if (output_mask[0]) dx = new_array(x.dims);
  if (output_mask[1]) dweight = filled(c, 0.0f);  // the kernel accumulates (+=) into zeros
  if (output_mask[2]) dbias = filled(c, 0.0f);
  std::vector<std::byte> workspace(batchnorm_workspace_bytes(x.problem));
  const BatchNormBackwardArgs args{
      .problem = x.problem,
      .statistics = frozen ? BatchNormStatistics::frozen : BatchNormStatistics::batch,
      .mask = {.dx = output_mask[0], .dgamma = output_mask[1], .dbeta = output_mask[2]},
      .x = x.array.data(),
      .dy = dy.array.data(),
      .mean = mean.data(),
      .invstd = invstd.data(),
      .gamma = gamma ? gamma->data() : nullptr,
      .dx = dx ? dx->mutable_data() : nullptr,
      .dgamma = dweight ? dweight->mutable_data() : nullptr,
      .dbeta = dbias ? dbias->mutable_data() : nullptr,
      .workspace = workspace,
      .stores = output_stores(stores, at)};
  {
    py::gil_scoped_release no_gil;
    batchnorm_backward(args);
  }
  auto or_none = [](std::optional<FloatArray>& a) -> py::object {
    return a ? py::object(std::move(*a)) : py::none();
  };
  return py::make_tuple(or_none(dx), or_none(dweight), or_none(dbias));
}

py::tuple moments(const ArrayArg& x_object, bool channels_last) {
  const Input x = input(x_object, where("moments") + ": x", channels_last);
  Moments out{0, DoubleArray(x.problem.channels), DoubleArray(x.problem.channels)};
  ChannelMoments view = out.view();
  std::vector<std::byte> workspace(batchnorm_workspace_bytes(x.problem));
  {
    py::gil_scoped_release no_gil;
    batchnorm_moments(x.problem, x.array.data(), view, workspace);
  }
  out.count = view.count;
  return out.to_tuple();
}

py::tuple moments_merge(const MomentsArg& a_object, const MomentsArg& b_object) {
  const std::string at = where("moments_merge");
  const Moments a = parse_moments(a_object, -1, at + ": a");
  const std::int64_t c = a.mean.size();
  const Moments b = parse_moments(b_object, c, at + ": b");
  Moments merged{a.count, copy_f64(a.mean), copy_f64(a.m2)};
  ChannelMoments merged_view = merged.view();
  batchnorm_moments_merge(c, merged_view, b.view());  // updates the count too
  merged.count = merged_view.count;
  return merged.to_tuple();
}

py::tuple moments_finalize(const MomentsArg& moments_object, double eps,
                           const OptionalArrayArg& running_mean, const OptionalArrayArg& running_var,
                           std::optional<double> momentum,
                           std::optional<std::int64_t> num_batches_tracked) {
  const std::string at = where("moments_finalize");
  const Moments m = parse_moments(moments_object, -1, at + ": moments");
  const std::int64_t c = m.mean.size();
  const RunningStatsUpdate running =
      running_update(running_mean, running_var, momentum, num_batches_tracked, c, at);
  FloatArray save_mean(c), save_invstd(c);
  batchnorm_moments_finalize(c, m.view(), eps, save_mean.mutable_data(),
                             save_invstd.mutable_data(), running);
  return py::make_tuple(save_mean, save_invstd);
}

}  // namespace

void bind_functional(py::module_& f) {
  f.doc() = R"doc(bnorm.functional: the batch-normalization kernels as stateless functions.

Arrays are float32 numpy arrays (moments are float64), shaped (N, C, ...) or, with
channels_last=True, (N, ..., C); per-channel arrays are (C,). float64 data is not cast
silently (ValueError); non-contiguous inputs are copied once. Conventions: momentum is the
weight of the new batch (PyTorch's meaning); normalization uses the biased variance and
running_var stores the unbiased one; invstd = 1 / sqrt(var + eps).

Synchronized batch norm across shards:
  parts = [moments(x_k) for each shard];  total = moments_merge(moments_merge(p0, p1), p2) ...
  mean, invstd = moments_finalize(total, eps, running_mean, running_var, momentum)
  y_k = batch_norm_infer(x_k, mean, invstd=invstd, weight=w, bias=b)
)doc";

  f.def("batch_norm_train", &batch_norm_train, py::arg("x"), py::arg("weight") = py::none(),
        py::arg("bias") = py::none(), py::arg("running_mean") = py::none(),
        py::arg("running_var") = py::none(), py::arg("momentum") = 0.1,
        py::arg("num_batches_tracked") = py::none(), py::arg("eps") = 1e-5,
        py::arg("channels_last") = false, py::kw_only(), py::arg("stores") = "automatic",
        R"doc(Training-mode forward: normalize x with its own batch statistics.

Returns (y, save_mean, save_invstd): y shaped like x, and the per-channel batch mean and
1/sqrt(biased var + eps) that batch_norm_backward needs. weight/bias may be None (affine
off); if only one is given the other defaults to ones / zeros. When running_mean and
running_var are given (both writable contiguous float32 (C,) arrays) they are updated IN
PLACE: running = (1 - f) * running + f * batch, with the unbiased batch variance, where
f = momentum, or 1 / num_batches_tracked when momentum is None (num_batches_tracked counts
the batches including this one). ValueError when a channel has only one value.
stores: how y is stored, "automatic" (non-temporal stores where y goes to DRAM anyway),
"cached" or "streaming"; the values are the same whichever is used.)doc");

  f.def("batch_norm_infer", &batch_norm_infer, py::arg("x"), py::arg("running_mean"),
        py::arg("running_var") = py::none(), py::arg("weight") = py::none(),
        py::arg("bias") = py::none(), py::arg("eps") = 1e-5, py::arg("channels_last") = false,
        py::kw_only(), py::arg("invstd") = py::none(), py::arg("stores") = "automatic",
        R"doc(Inference forward: y = (x - running_mean) * invstd * weight + bias.

invstd = 1/sqrt(running_var + eps). Instead of running_var, a precomputed invstd may be
given (keyword only), e.g. from moments_finalize for synchronized batch norm: give exactly
one of the two. Returns y shaped like x. stores: as for batch_norm_train.)doc");

  f.def("batch_norm_backward", &batch_norm_backward, py::arg("x"), py::arg("dy"),
        py::arg("save_mean"), py::arg("save_invstd"), py::arg("weight") = py::none(),
        py::arg("frozen") = false, py::arg("channels_last") = false,
        py::arg("output_mask") = std::array<bool, 3>{true, true, true}, py::kw_only(),
        py::arg("stores") = "automatic",
        R"doc(Backward of batch_norm_train (frozen=False) or of normalization with constant
statistics (frozen=True, e.g. eval mode: pass the running mean and
1/sqrt(running_var + eps) as save_mean / save_invstd).

Returns (dx, dweight, dbias); an entry is None when its output_mask flag is False.
dweight = sum(dy * xhat) and dbias = sum(dy) per channel (computed even when weight is
None, i.e. gamma = 1). frozen=False: dx = w*invstd*(dy - mean(dy) - xhat*mean(dy*xhat));
frozen=True: dx = w*invstd*dy. stores: how dx is stored, as for batch_norm_train.)doc");

  f.def("moments", &moments, py::arg("x"), py::arg("channels_last") = false,
        R"doc(Per-channel moments of x: (count, mean, m2), count = N * spatial values per
channel (int), mean and m2 = sum((x - mean)^2) float64 arrays of shape (C,).)doc");

  f.def("moments_merge", &moments_merge, py::arg("a"), py::arg("b"),
        R"doc(Moments of the union of two disjoint shards (Chan, Golub & LeVeque 1979):
returns a new (count, mean, m2); a and b are not modified.)doc");

  f.def("moments_finalize", &moments_finalize, py::arg("moments"), py::arg("eps") = 1e-5,
        py::arg("running_mean") = py::none(), py::arg("running_var") = py::none(),
        py::arg("momentum") = 0.1, py::arg("num_batches_tracked") = py::none(),
        R"doc(From (merged) moments: returns (save_mean, save_invstd) as float32 (C,) arrays
and, when running_mean/running_var are given, updates them in place exactly as
batch_norm_train does. ValueError when count < 2.)doc");
}

}  // namespace bnorm::python
