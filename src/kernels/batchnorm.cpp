// Entry points of the batch-normalization kernel family: argument checks, the ordered
// implementation list, and the shard-merging arithmetic (which is the same everywhere).
#include "bnorm/kernels/batchnorm.hpp"

#include <array>
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "kernels/cpu/batchnorm_cpu.hpp"
#include "kernels/reference/batchnorm_reference.hpp"

namespace bnorm {

BatchNormProblem BatchNormProblem::from_shape(const Shape& shape, Layout layout) {
  if (shape.rank() < 2)
    throw std::invalid_argument("bnorm: batch norm needs an input of rank 2 to 5 (N, C, ...), got " +
                                shape.to_string());
  BatchNormProblem p{.batch = shape[0], .channels = shape[1], .spatial = 1, .layout = layout};
  for (int axis = 2; axis < shape.rank(); ++axis) p.spatial *= shape[axis];
  return p;
}

std::string BatchNormProblem::to_string() const {
  std::ostringstream out;
  out << 'n' << batch << 'c' << channels << 's' << spatial << ':'
      << (spatial == 1 ? "nc" : layout == Layout::channels_first ? "nchw" : "nhwc");
  return out.str();
}

BatchNormProblem BatchNormProblem::parse(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("bnorm: bad problem string '" + std::string(text) + "': " + why +
                                 " (expected e.g. n32c64s3136:nhwc or n32c64h56w56:nchw)");
  };
  const std::size_t colon = text.find(':');
  const std::string_view dims = text.substr(0, colon);
  const std::string_view layout = colon == std::string_view::npos ? "nchw" : text.substr(colon + 1);
  BatchNormProblem p{.batch = 0, .channels = 0, .spatial = 1, .layout = Layout::channels_first};
  std::string seen;  // keys in order: n, c, then the spatial ones
  for (std::size_t i = 0; i < dims.size();) {
    const char key = dims[i++];
    if (std::string_view("ncsldhw").find(key) == std::string_view::npos)
      throw bad(std::string("unknown key '") + key + "'");  // before its number: "60x100" is not n=0
    std::size_t end = i;
    while (end < dims.size() && dims[end] >= '0' && dims[end] <= '9') ++end;
    if (end == i || end - i > 18) throw bad(std::string("expected a number after '") + key + "'");
    const std::int64_t value = std::stoll(std::string(dims.substr(i, end - i)));
    if (value < 1) throw bad(std::string("'") + key + "' must be >= 1");
    i = end;
    seen += key;
    if (key == 'n') p.batch = value;
    else if (key == 'c') p.channels = value;
    else p.spatial *= value;  // s, l, d, h, w
  }
  if (seen != "nc" && seen != "ncs" && seen != "ncl" && seen != "nchw" && seen != "ncdhw")
    throw bad("keys must be n, c, then s, l, h w, or d h w");
  if (layout == "nhwc" || layout == "nlc" || layout == "ndhwc") p.layout = Layout::channels_last;
  else if (layout != "nchw" && layout != "ncl" && layout != "ncdhw" && layout != "nc")
    throw bad("unknown layout '" + std::string(layout) + "'");
  return p;
}

double running_average_factor(std::optional<double> momentum, std::int64_t num_batches_tracked) {
  if (momentum) return *momentum;
  if (num_batches_tracked < 1)
    throw std::invalid_argument("bnorm: cumulative running average needs num_batches_tracked >= 1");
  return 1.0 / static_cast<double>(num_batches_tracked);
}

namespace {
constexpr std::array<std::pair<OutputStores, std::string_view>, 3> kOutputStoresNames = {{
    {OutputStores::automatic, "automatic"},
    {OutputStores::cached, "cached"},
    {OutputStores::streaming, "streaming"},
}};
}  // namespace

std::string_view output_stores_name(OutputStores stores) {
  for (const auto& [value, name] : kOutputStoresNames)
    if (value == stores) return name;
  return "?";
}

OutputStores parse_output_stores(std::string_view name) {
  for (const auto& [value, known] : kOutputStoresNames)
    if (known == name) return value;
  std::string choices;
  for (const auto& entry : kOutputStoresNames)
    choices += (choices.empty() ? "" : ", ") + std::string(entry.second);
  throw std::invalid_argument("bnorm: unknown output stores '" + std::string(name) + "' (one of " +
                              choices + ")");
}

namespace {

[[noreturn]] void fail(const BatchNormProblem& p, const std::string& what) {
  throw std::invalid_argument("bnorm batch norm " + p.to_string() + ": " + what);
}

void check_problem(const BatchNormProblem& p) {
  if (p.batch < 1 || p.channels < 1 || p.spatial < 1)
    fail(p, "N, C and spatial size must all be >= 1 (N=" + std::to_string(p.batch) +
                ", C=" + std::to_string(p.channels) + ", S=" + std::to_string(p.spatial) + ")");
}

void check_training(const BatchNormProblem& p) {
  check_problem(p);
  if (p.values_per_channel() < 2)
    fail(p, "expected more than 1 value per channel when training (N * spatial = " +
                std::to_string(p.values_per_channel()) +
                "); batch statistics of one value are undefined");
}

void require(const BatchNormProblem& p, const void* pointer, const char* name) {
  if (!pointer) fail(p, std::string(name) + " is null");
}

void check_workspace(const BatchNormProblem& p, const BatchNormImpl& impl,
                     std::span<std::byte> workspace) {
  const std::size_t need = impl.workspace_bytes(p);
  if (workspace.size() < need)
    fail(p, std::string("workspace of ") + std::to_string(workspace.size()) + " bytes, " +
                impl.name + " needs " + std::to_string(need));
}

const BatchNormImpl* const implementations[] = {
    &cpu::batchnorm_impl_avx2,
    &cpu::batchnorm_impl_scalar,
    &reference::batchnorm_impl,
};

}  // namespace

std::span<const BatchNormImpl> batchnorm_implementations() {
  static const std::vector<BatchNormImpl> list = [] {
    std::vector<BatchNormImpl> v;
    for (const BatchNormImpl* impl : implementations) v.push_back(*impl);
    return v;
  }();
  return list;
}

const BatchNormImpl& batchnorm_impl_by_name(const std::string& name) {
  for (const BatchNormImpl* impl : implementations)
    if (name == impl->name) return *impl;
  std::string known;
  for (const BatchNormImpl* impl : implementations) known += std::string(" ") + impl->name;
  throw std::invalid_argument("bnorm: unknown batch-norm implementation '" + name +
                              "'; known:" + known);
}

const BatchNormImpl& batchnorm_select(const BatchNormProblem& problem) {
  static const char* forced = std::getenv("BNORM_IMPL");
  if (forced && *forced) {
    const BatchNormImpl& impl = batchnorm_impl_by_name(forced);
    if (const char* why = impl.declines(problem))
      fail(problem, std::string("BNORM_IMPL=") + forced + " declines: " + why);
    return impl;
  }
  for (const BatchNormImpl* impl : implementations)
    if (!impl->declines(problem)) return *impl;
  return reference::batchnorm_impl;  // never declines
}

std::size_t batchnorm_workspace_bytes(const BatchNormProblem& problem) {
  check_problem(problem);
  // The largest need of any implementation, so a buffer sized once works whatever runs.
  std::size_t bytes = 0;
  for (const BatchNormImpl* impl : implementations)
    if (!impl->declines(problem)) bytes = std::max(bytes, impl->workspace_bytes(problem));
  return bytes;
}

void batchnorm_forward_train(const BatchNormForwardTrainArgs& a) {
  const BatchNormProblem& p = a.problem;
  check_training(p);
  require(p, a.x, "x");
  require(p, a.y, "y");
  require(p, a.save_mean, "save_mean");
  require(p, a.save_invstd, "save_invstd");
  if (!a.gamma != !a.beta) fail(p, "gamma and beta must be given together (affine) or not at all");
  if (a.running.mean) require(p, a.running.var, "running.var");
  if (!(a.eps >= 0)) fail(p, "eps must be >= 0, got " + std::to_string(a.eps));
  const BatchNormImpl& impl = batchnorm_select(p);
  check_workspace(p, impl, a.workspace);
  impl.forward_train(a);
}

void batchnorm_forward_infer(const BatchNormForwardInferArgs& a) {
  const BatchNormProblem& p = a.problem;
  check_problem(p);
  require(p, a.x, "x");
  require(p, a.y, "y");
  require(p, a.mean, "mean");
  if (!a.var == !a.invstd) fail(p, "give exactly one of var and invstd");
  if (!a.gamma != !a.beta) fail(p, "gamma and beta must be given together (affine) or not at all");
  batchnorm_select(p).forward_infer(a);
}

void batchnorm_backward(const BatchNormBackwardArgs& a) {
  const BatchNormProblem& p = a.problem;
  if (a.statistics == BatchNormStatistics::batch)
    check_training(p);
  else
    check_problem(p);
  require(p, a.x, "x");
  require(p, a.dy, "dy");
  require(p, a.mean, "mean");
  require(p, a.invstd, "invstd");
  if (a.mask.dx) require(p, a.dx, "dx (mask.dx is set)");
  if (a.mask.dgamma) require(p, a.dgamma, "dgamma (mask.dgamma is set)");
  if (a.mask.dbeta) require(p, a.dbeta, "dbeta (mask.dbeta is set)");
  const BatchNormImpl& impl = batchnorm_select(p);
  check_workspace(p, impl, a.workspace);
  impl.backward(a);
}

void batchnorm_moments(const BatchNormProblem& problem, const float* x, ChannelMoments& out,
                       std::span<std::byte> workspace) {
  check_problem(problem);
  require(problem, x, "x");
  require(problem, out.mean, "moments.mean");
  require(problem, out.m2, "moments.m2");
  const BatchNormImpl& impl = batchnorm_select(problem);
  check_workspace(problem, impl, workspace);
  impl.moments(problem, x, out, workspace);  // the kernel gets a copy: set the count here
  out.count = problem.values_per_channel();
}

void batchnorm_moments_merge(std::int64_t channels, ChannelMoments& a, const ChannelMoments& b) {
  // Chan, Golub & LeVeque: with delta = mean_b - mean_a and n = n_a + n_b,
  //   mean = mean_a + delta * n_b / n,   M2 = M2_a + M2_b + delta^2 * n_a * n_b / n.
  const double na = static_cast<double>(a.count), nb = static_cast<double>(b.count);
  const double n = na + nb;
  if (b.count == 0) return;
  for (std::int64_t c = 0; c < channels; ++c) {
    if (a.count == 0) {
      a.mean[c] = b.mean[c];
      a.m2[c] = b.m2[c];
      continue;
    }
    const double delta = b.mean[c] - a.mean[c];
    a.mean[c] += delta * (nb / n);
    a.m2[c] += b.m2[c] + delta * delta * (na * nb / n);
  }
  a.count += b.count;
}

void batchnorm_moments_finalize(std::int64_t channels, const ChannelMoments& moments, double eps,
                                float* save_mean, float* save_invstd, RunningStatsUpdate running) {
  if (moments.count < 2)
    throw std::invalid_argument(
        "bnorm batch norm: expected more than 1 value per channel when training, got " +
        std::to_string(moments.count));
  const double m = static_cast<double>(moments.count);
  for (std::int64_t c = 0; c < channels; ++c) {
    const double m2 = std::max(moments.m2[c], 0.0);
    save_mean[c] = static_cast<float>(moments.mean[c]);
    save_invstd[c] = static_cast<float>(1.0 / std::sqrt(m2 / m + eps));
    if (running.mean) {
      const double f = running.factor;
      running.mean[c] = static_cast<float>((1.0 - f) * running.mean[c] + f * moments.mean[c]);
      running.var[c] = static_cast<float>((1.0 - f) * running.var[c] + f * m2 / (m - 1.0));
    }
  }
}

}  // namespace bnorm
