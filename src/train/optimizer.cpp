// Optimizers: the shared bookkeeping (parameters, slots, state, validation) and the SGD and
// Adam/AdamW update loops. The formulas and their PyTorch origin are in
// bnorm/train/optimizer.hpp; each loop below writes the float32 operations in torch.optim's
// order so that results agree with it to rounding (FMA inside PyTorch's vectorized kernels
// being the only difference). This file is compiled with -ffp-contract=off
// (src/train/CMakeLists.txt): a contracted multiply-add rounds differently from the
// separate operations, and where the compiler contracts the vectorized body of a loop but
// not its scalar tail, an element's value would depend on where a thread's chunk starts.
#include "bnorm/train/optimizer.hpp"

#include "bnorm/util/parallel.hpp"

#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace bnorm {
namespace {

// Runs body(i) for i in the range. `simd` tells the compiler that iterations are independent
// (each body touches only element i of its arrays), so it vectorizes although it cannot prove
// the arrays do not overlap.
template <class Body>
void for_each_element(IndexRange range, const Body& body) {
#pragma omp simd
  for (std::int64_t i = range.begin; i < range.end; ++i) body(i);
}

// Calls f.template operator()<b1, b2, ...>() with the run-time flags as compile-time
// constants (one instantiation per combination).
template <bool... Fixed, class F>
void with_constants(F&& f) {
  f.template operator()<Fixed...>();
}
template <bool... Fixed, class F, class... Rest>
void with_constants(F&& f, bool flag, Rest... rest) {
  if (flag) with_constants<Fixed..., true>(f, rest...);
  else with_constants<Fixed..., false>(f, rest...);
}

std::string format_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

void require_at_least(const char* who, const char* what, double value, double low) {
  if (!std::isfinite(value) || value < low)
    throw std::invalid_argument(std::string(who) + ": " + what + " must be a finite number >= " +
                                format_number(low) + ", got " + format_number(value));
}

// [0, 1): a momentum or beta of 1 would never forget (and Adam's bias correction divides by 0).
void require_unit_interval(const char* who, const char* what, double value) {
  if (!(value >= 0.0 && value < 1.0))
    throw std::invalid_argument(std::string(who) + ": " + what + " must be in [0, 1), got " +
                                format_number(value));
}

bool is_decayed(const ParameterRef& parameter, bool decay_biases_and_norm) {
  return decay_biases_and_norm || parameter.role == ParameterRole::weight;
}

Tensor deep_copy(const Tensor& t) {
  Tensor copy = Tensor::empty(t.shape(), t.layout());
  std::memcpy(copy.data_f32(), t.data_f32(), t.nbytes());
  return copy;
}

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

// Layout decides memory order only from rank 3 up (rank 1 and 2 have one order).
bool same_memory_order(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && (a.rank() < 3 || a.layout() == b.layout());
}

}  // namespace

// ---- Optimizer

Optimizer::Optimizer(std::vector<ParameterRef> parameters, double lr,
                     std::vector<std::string> slot_names)
    : parameters_(std::move(parameters)), slot_names_(std::move(slot_names)) {
  if (parameters_.empty()) throw std::invalid_argument("optimizer: empty parameter list");
  std::set<std::string> names;
  std::set<const Tensor*> values;
  for (const ParameterRef& p : parameters_) {
    const std::string who = "optimizer: parameter '" + p.name + "'";
    if (p.name.empty()) throw std::invalid_argument("optimizer: a parameter has an empty name");
    if (!names.insert(p.name).second)
      throw std::invalid_argument(who + " appears twice (state names must be unique)");
    if (p.value == nullptr || !p.value->defined())
      throw std::invalid_argument(who + " has no value tensor");
    if (p.grad == nullptr || !p.grad->defined())
      throw std::invalid_argument(who + " has no grad tensor");
    if (!values.insert(p.value).second)
      throw std::invalid_argument(who + " shares its value tensor with another parameter");
    if (p.value->dtype() != DType::f32 || p.grad->dtype() != DType::f32)
      throw std::invalid_argument(who + ": value " + p.value->describe() + " and grad " +
                                  p.grad->describe() + " must both be f32");
    if (!same_memory_order(*p.value, *p.grad))
      throw std::invalid_argument(who + ": grad " + p.grad->describe() + " does not match value " +
                                  p.value->describe());
  }
  require_at_least("optimizer", "lr", lr, 0.0);  // kind() is not callable from here
  lr_ = lr;
  slots_.resize(parameters_.size());
  for (std::size_t i = 0; i < parameters_.size(); ++i)
    for (std::size_t s = 0; s < slot_names_.size(); ++s)
      slots_[i].push_back(
          Tensor::zeros(parameters_[i].value->shape(), parameters_[i].value->layout()));
}

void Optimizer::set_learning_rate(double lr) {
  require_at_least(("optimizer " + kind()).c_str(), "lr", lr, 0.0);
  lr_ = lr;
}

void Optimizer::step() {
  // Check everything before changing anything, so that a bad parameter leaves all untouched.
  for (std::size_t i = 0; i < parameters_.size(); ++i) {
    const ParameterRef& p = parameters_[i];
    const bool ok = p.value->defined() && p.grad->defined() && p.value->dtype() == DType::f32 &&
                    p.grad->dtype() == DType::f32 && same_memory_order(*p.value, *p.grad) &&
                    (slots_[i].empty() || same_memory_order(*p.value, slots_[i][0]));
    if (!ok)
      throw std::invalid_argument("optimizer " + kind() + ": step: parameter '" + p.name +
                                  "' changed since construction: value " +
                                  (p.value->defined() ? p.value->describe() : "undefined") +
                                  ", grad " +
                                  (p.grad->defined() ? p.grad->describe() : "undefined") +
                                  (slots_[i].empty() ? "" : ", state " + slots_[i][0].describe()));
  }
  ++step_;
  // One parallel region for all parameters, each split between threads as zero_grad and
  // Linear's backward split it (bnorm/util/parallel.hpp), so that every thread updates the
  // elements whose gradient it computed: on 2 cores without a shared L2, updating the
  // gradients the other core wrote took mlp-paper's SGD step from 17 to 55 us. The updates
  // are element-wise, so the result does not depend on the number of threads.
  std::int64_t total = 0;
  for (const ParameterRef& p : parameters_) total += p.value->numel();
  parallel_threads(total, elementwise_min_parallel, [&](int t, int threads) {
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
      const IndexRange range = static_range(parameters_[i].value->numel(), t, threads);
      if (range.begin < range.end) update_parameter(parameters_[i], slots_[i], step_, range);
    }
  });
}

void Optimizer::zero_grad() { clear_gradients(parameters_); }

OptimizerState Optimizer::state() const {
  OptimizerState state;
  state.step = step_;
  for (std::size_t i = 0; i < parameters_.size(); ++i)
    for (std::size_t s = 0; s < slot_names_.size(); ++s)
      state.tensors.push_back(
          {parameters_[i].name + "." + slot_names_[s], deep_copy(slots_[i][s])});
  return state;
}

void Optimizer::load_state(const OptimizerState& state) {
  const std::string who = "optimizer " + kind() + ": load_state: ";
  if (state.step < 0)
    throw std::invalid_argument(who + "step count must be >= 0, got " + std::to_string(state.step));
  // name -> (parameter, slot)
  std::map<std::string, std::pair<std::size_t, std::size_t>> expected;
  for (std::size_t i = 0; i < parameters_.size(); ++i)
    for (std::size_t s = 0; s < slot_names_.size(); ++s)
      expected[parameters_[i].name + "." + slot_names_[s]] = {i, s};
  const std::string keeps =
      slot_names_.empty() ? "this optimizer keeps no tensors"
                          : "this optimizer keeps " + join(slot_names_) + " for each of its " +
                                std::to_string(parameters_.size()) + " parameters";

  std::vector<const Tensor*> sources(parameters_.size() * slot_names_.size(), nullptr);
  for (const OptimizerStateEntry& entry : state.tensors) {
    const auto found = expected.find(entry.name);
    if (found == expected.end())
      throw std::invalid_argument(who + "unexpected tensor '" + entry.name + "' (" + keeps + ")");
    const auto [i, s] = found->second;
    const Tensor*& source = sources[i * slot_names_.size() + s];
    if (source != nullptr)
      throw std::invalid_argument(who + "tensor '" + entry.name + "' appears twice");
    const Tensor& target = slots_[i][s];
    if (!entry.tensor.defined())
      throw std::invalid_argument(who + "tensor '" + entry.name + "' is undefined, expected " +
                                  target.describe());
    if (entry.tensor.dtype() != DType::f32 || !same_memory_order(entry.tensor, target))
      throw std::invalid_argument(who + "tensor '" + entry.name + "' is " +
                                  entry.tensor.describe() + " but parameter '" +
                                  parameters_[i].name + "' needs " + target.describe());
    source = &entry.tensor;
  }
  for (const auto& [name, index] : expected)
    if (sources[index.first * slot_names_.size() + index.second] == nullptr)
      throw std::invalid_argument(who + "missing tensor '" + name + "' (" + keeps + ")");

  for (std::size_t i = 0; i < parameters_.size(); ++i)
    for (std::size_t s = 0; s < slot_names_.size(); ++s)
      std::memcpy(slots_[i][s].data_f32(), sources[i * slot_names_.size() + s]->data_f32(),
                  slots_[i][s].nbytes());
  step_ = state.step;
}

// ---- SGD

namespace {
SgdOptions validated(const SgdOptions& o) {
  require_at_least("sgd", "lr", o.lr, 0.0);
  require_unit_interval("sgd", "momentum", o.momentum);
  require_at_least("sgd", "weight_decay", o.weight_decay, 0.0);
  if (o.nesterov && o.momentum == 0.0)
    throw std::invalid_argument("sgd: nesterov requires momentum > 0, got momentum 0");
  return o;
}
}  // namespace

Sgd::Sgd(std::vector<ParameterRef> parameters, const SgdOptions& options)
    : Optimizer(std::move(parameters), validated(options).lr,
                options.momentum > 0.0 ? std::vector<std::string>{"momentum_buffer"}
                                       : std::vector<std::string>{}),
      options_(options) {}

std::string Sgd::describe() const {
  return "sgd(lr=" + format_number(options_.lr) + ", momentum=" + format_number(options_.momentum) +
         ", nesterov=" + (options_.nesterov ? "true" : "false") +
         ", weight_decay=" + format_number(options_.weight_decay) +
         ", decay_biases_and_norm=" + (options_.decay_biases_and_norm ? "true" : "false") + ")";
}

void Sgd::update_parameter(const ParameterRef& parameter, std::span<Tensor> slots,
                           std::int64_t step, IndexRange range) {
  float* p = parameter.value->data_f32();
  const float* g = parameter.grad->data_f32();
  float* buffer = slots.empty() ? nullptr : slots[0].data_f32();  // null without momentum
  const float weight_decay = is_decayed(parameter, options_.decay_biases_and_norm)
                                 ? static_cast<float>(options_.weight_decay)
                                 : 0.0f;
  const float momentum = static_cast<float>(options_.momentum);
  const float neg_lr = static_cast<float>(-learning_rate());
  // On step 1 the buffer becomes the gradient itself, as PyTorch creates it; the zeros
  // allocated at construction are not read.
  // The choices are loop-invariant: as template constants each combination compiles to a
  // loop without branches, which the compiler vectorizes.
  with_constants(
      [&]<bool decay, bool has_buffer, bool first, bool nesterov>() {
        for_each_element(range, [=](std::int64_t i) {
          float d = g[i];
          if constexpr (decay) d = d + weight_decay * p[i];  // d_p.add(param, alpha=wd)
          if constexpr (has_buffer) {
            const float b = first ? d : buffer[i] * momentum + d;  // buf.mul_(m).add_(d_p)
            buffer[i] = b;
            d = nesterov ? d + momentum * b : b;  // d_p.add(buf, alpha=m)
          }
          p[i] = p[i] + neg_lr * d;  // param.add_(d_p, alpha=-lr)
        });
      },
      weight_decay != 0.0f, buffer != nullptr, step == 1, options_.nesterov);
}

// ---- Adam / AdamW

namespace {
AdamOptions validated(const AdamOptions& o) {
  const char* who = o.decoupled ? "adamw" : "adam";
  require_at_least(who, "lr", o.lr, 0.0);
  require_unit_interval(who, "beta1", o.beta1);
  require_unit_interval(who, "beta2", o.beta2);
  require_at_least(who, "eps", o.eps, 0.0);
  require_at_least(who, "weight_decay", o.weight_decay, 0.0);
  return o;
}
}  // namespace

Adam::Adam(std::vector<ParameterRef> parameters, const AdamOptions& options)
    : Optimizer(std::move(parameters), validated(options).lr, {"exp_avg", "exp_avg_sq"}),
      options_(options) {}

std::string Adam::describe() const {
  return kind() + "(lr=" + format_number(options_.lr) + ", betas=(" +
         format_number(options_.beta1) + ", " + format_number(options_.beta2) +
         "), eps=" + format_number(options_.eps) +
         ", weight_decay=" + format_number(options_.weight_decay) +
         ", decay_biases_and_norm=" + (options_.decay_biases_and_norm ? "true" : "false") + ")";
}

void Adam::update_parameter(const ParameterRef& parameter, std::span<Tensor> slots,
                            std::int64_t step, IndexRange range) {
  float* p = parameter.value->data_f32();
  const float* g = parameter.grad->data_f32();
  float* exp_avg = slots[0].data_f32();
  float* exp_avg_sq = slots[1].data_f32();

  // Scalars in double, rounded to float once (PyTorch's Python-float arithmetic).
  const double lr = learning_rate();
  const bool decayed =
      is_decayed(parameter, options_.decay_biases_and_norm) && options_.weight_decay != 0.0;
  const float l2 =
      decayed && !options_.decoupled ? static_cast<float>(options_.weight_decay) : 0.0f;
  const float shrink =
      decayed && options_.decoupled ? static_cast<float>(1.0 - lr * options_.weight_decay) : 1.0f;
  const float beta1 = static_cast<float>(options_.beta1);
  const float beta2 = static_cast<float>(options_.beta2);
  const float one_minus_beta1 = static_cast<float>(1.0 - options_.beta1);
  const float one_minus_beta2 = static_cast<float>(1.0 - options_.beta2);
  const double bias_correction1 = 1.0 - std::pow(options_.beta1, static_cast<double>(step));
  const double bias_correction2 = 1.0 - std::pow(options_.beta2, static_cast<double>(step));
  const float neg_step_size = static_cast<float>(-(lr / bias_correction1));
  const float bias_correction2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  const float eps = static_cast<float>(options_.eps);

  for_each_element(range, [&](std::int64_t i) {
    // In torch.optim's words, one line each:
    float grad = g[i];
    if (l2 != 0.0f) grad = grad + l2 * p[i];  // grad.add(param, alpha=wd)
    const float param = p[i] * shrink;        // param.mul_(1 - lr*wd)  (1 unless AdamW)
    // exp_avg.mul_(b1).add_(grad, alpha=1-b1)
    const float m = exp_avg[i] * beta1 + one_minus_beta1 * grad;
    // exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1-b2)
    const float v = exp_avg_sq[i] * beta2 + one_minus_beta2 * grad * grad;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    // denom = (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps)
    const float denom = std::sqrt(v) / bias_correction2_sqrt + eps;
    // param.addcdiv_(exp_avg, denom, value=-step_size)
    p[i] = param + neg_step_size * m / denom;
  });
}

// ---- by name

const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> names{"sgd", "adam", "adamw"};
  return names;
}

std::unique_ptr<Optimizer> make_optimizer(std::string_view name,
                                          std::vector<ParameterRef> parameters,
                                          const OptimizerSettings& settings) {
  const auto reject = [&](bool is_set, const char* setting) {
    if (is_set)
      throw std::invalid_argument("optimizer " + std::string(name) + " has no setting '" + setting +
                                  "'");
  };
  if (name == "sgd") {
    reject(settings.beta1.has_value(), "beta1");
    reject(settings.beta2.has_value(), "beta2");
    reject(settings.eps.has_value(), "eps");
    SgdOptions o;
    o.lr = settings.lr.value_or(o.lr);
    o.momentum = settings.momentum.value_or(o.momentum);
    o.nesterov = settings.nesterov.value_or(o.nesterov);
    o.weight_decay = settings.weight_decay.value_or(o.weight_decay);
    o.decay_biases_and_norm = settings.decay_biases_and_norm.value_or(o.decay_biases_and_norm);
    return std::make_unique<Sgd>(std::move(parameters), o);
  }
  if (name == "adam" || name == "adamw") {
    reject(settings.momentum.has_value(), "momentum");
    reject(settings.nesterov.has_value(), "nesterov");
    AdamOptions o;
    o.decoupled = name == "adamw";
    o.lr = settings.lr.value_or(o.lr);
    o.beta1 = settings.beta1.value_or(o.beta1);
    o.beta2 = settings.beta2.value_or(o.beta2);
    o.eps = settings.eps.value_or(o.eps);
    o.weight_decay =
        settings.weight_decay.value_or(o.decoupled ? adamw_default_weight_decay : o.weight_decay);
    o.decay_biases_and_norm = settings.decay_biases_and_norm.value_or(o.decay_biases_and_norm);
    return std::make_unique<Adam>(std::move(parameters), o);
  }
  throw std::invalid_argument("unknown optimizer '" + std::string(name) +
                              "' (known: " + join(optimizer_names()) + ")");
}

}  // namespace bnorm
