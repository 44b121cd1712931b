// bnorm/train/optimizer.hpp: optimizers (SGD with momentum/Nesterov, Adam, AdamW) over a
// model's parameters.
//
// What an optimizer represents: the update rule of torch.optim (PyTorch 1.13, single-tensor
// code path) applied to a fixed list of parameters, plus the state that rule keeps between
// steps (momentum buffers, Adam moments, the step count). The arithmetic is PyTorch's, in the
// same float32 operation order, so that a run matches torch.optim to float rounding:
//   SGD   (dampening 0)     d = g + wd*p;  b = (first step ? d : momentum*b + d);
//                           d = nesterov ? d + momentum*b : b;  p = p - lr*d
//   Adam  (L2 decay)        g = g + wd*p;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;
//                           p = p - (lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
//   AdamW (decoupled decay) p = p*(1 - lr*wd), then the Adam step without the L2 term.
// Scalar coefficients (lr/(1-b1^t), 1 - lr*wd, ...) are computed in double and rounded to
// float once, as PyTorch does with Python floats.
//
// Weight decay and parameter roles: by default weight decay is applied only to parameters of
// role ParameterRole::weight (Linear/Conv weights); biases (role bias) and BatchNorm's gamma
// and beta (role norm) are not decayed. Decaying BN's gamma pulls the scale of a normalized
// layer toward zero without changing the function the network computes elsewhere, which only
// fights the optimizer; this is the usual practice (e.g. Goyal et al. 2017, "no bias decay").
// Set decay_biases_and_norm = true for PyTorch's default (decay every parameter).
//
// Use: each training step, after backward has accumulated the gradients,
//     optimizer.set_learning_rate(schedule.lr(optimizer.step_count()));
//     optimizer.step();        // uses the grads, does NOT zero them
//     optimizer.zero_grad();   // or model.zero_grad()
// step() reads every parameter's grad; a parameter always takes part (there is no "no grad").
//
// State for checkpoints: state() returns the step count and a list of named f32 tensors
// "<parameter name>.<slot>" (slots: SGD "momentum_buffer" when momentum > 0; Adam/AdamW
// "exp_avg", "exp_avg_sq"), in parameter order, as deep copies. load_state() accepts exactly
// that set of names (in any order) with the parameters' shapes, or throws without changing
// anything. The learning rate is not part of the state: the schedule recomputes it from the
// step count.
//
// Threads: updates are element-wise and run in parallel (OpenMP) over the elements of large
// tensors; every element is computed by the same expression whatever the thread count, so
// results are bitwise independent of it.
//
// Not here: learning-rate schedules (schedule.hpp), the training loop, gradient clipping.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bnorm/layers/layer.hpp"
#include "bnorm/tensor/tensor.hpp"
#include "bnorm/util/parallel.hpp"

namespace bnorm {

// One piece of optimizer state: "conv1.weight.momentum_buffer" and its values.
struct OptimizerStateEntry {
  std::string name;
  Tensor tensor;  // f32, the shape (and layout) of the parameter it belongs to
};

struct OptimizerState {
  std::int64_t step = 0;  // updates applied so far
  std::vector<OptimizerStateEntry> tensors;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // The factory name: "sgd", "adam" or "adamw".
  virtual std::string kind() const = 0;
  // One line with the options: "sgd(lr=0.1, momentum=0.9, nesterov=false, weight_decay=0, ...)".
  virtual std::string describe() const = 0;

  // Applies one update to every parameter from its current grad and increments step_count().
  // Requires: every value and grad still defined, f32, of the shapes seen at construction.
  void step();
  // Sets every parameter's grad to zero.
  void zero_grad();

  // The learning rate the next step() uses. It starts at the options' lr; a schedule sets it
  // before each step. Requires lr >= 0 and finite.
  double learning_rate() const { return lr_; }
  void set_learning_rate(double lr);
  // Number of step() calls so far (restored by load_state).
  std::int64_t step_count() const { return step_; }

  const std::vector<ParameterRef>& parameters() const { return parameters_; }
  // The slot names this optimizer keeps per parameter ("momentum_buffer"; "exp_avg", "exp_avg_sq").
  const std::vector<std::string>& slot_names() const { return slot_names_; }

  // Deep copies: later steps do not change a state already taken.
  OptimizerState state() const;
  // Replaces step count and slot values. Validates everything first (every expected name
  // present once, no unknown or duplicate name, f32, the parameter's shape and layout, step
  // >= 0) and throws std::invalid_argument naming the tensor and both shapes; on error nothing
  // changes.
  void load_state(const OptimizerState& state);

 protected:
  // Validates the parameters (non-empty list, unique names, value and grad defined, f32, same
  // shape) and allocates `slot_names.size()` zero slots per parameter.
  Optimizer(std::vector<ParameterRef> parameters, double lr, std::vector<std::string> slot_names);

  // Applies the update to the elements [range.begin, range.end) of one parameter; step()
  // calls it from several threads at once with disjoint ranges. `slots` are its state
  // tensors in slot_names() order; `step` is the 1-based number of this update (1 on the
  // first step, as in PyTorch).
  virtual void update_parameter(const ParameterRef& parameter, std::span<Tensor> slots,
                                std::int64_t step, IndexRange range) = 0;

 private:
  std::vector<ParameterRef> parameters_;
  std::vector<std::string> slot_names_;
  std::vector<std::vector<Tensor>> slots_;  // [parameter][slot]
  double lr_ = 0.0;
  std::int64_t step_ = 0;
};

// ---- SGD (torch.optim.SGD with dampening 0)

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.9;               // in [0, 1); 0 = plain SGD (no state)
  bool nesterov = false;               // requires momentum > 0
  double weight_decay = 0.0;           // L2: added to the gradient as weight_decay * p; >= 0
  bool decay_biases_and_norm = false;  // false: decay only role-weight parameters (see top)
};

class Sgd : public Optimizer {
 public:
  // Throws std::invalid_argument for invalid options (message names the option and its value).
  Sgd(std::vector<ParameterRef> parameters, const SgdOptions& options = {});
  std::string kind() const override { return "sgd"; }
  std::string describe() const override;
  const SgdOptions& options() const { return options_; }

 private:
  void update_parameter(const ParameterRef& parameter, std::span<Tensor> slots,
                        std::int64_t step, IndexRange range) override;
  SgdOptions options_;
};

// ---- Adam and AdamW (torch.optim.Adam / torch.optim.AdamW, amsgrad off)

// torch.optim.AdamW's default weight decay; the "adamw" factory uses it when none is given.
inline constexpr double adamw_default_weight_decay = 1e-2;

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;         // in [0, 1)
  double beta2 = 0.999;       // in [0, 1)
  double eps = 1e-8;          // >= 0, added after the square root of the corrected second moment
  double weight_decay = 0.0;  // >= 0
  bool decoupled = false;  // false: Adam (L2 added to the gradient); true: AdamW (p *= 1 - lr*wd)
  bool decay_biases_and_norm = false;  // false: decay only role-weight parameters (see top)
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<ParameterRef> parameters, const AdamOptions& options = {});
  std::string kind() const override { return options_.decoupled ? "adamw" : "adam"; }
  std::string describe() const override;
  const AdamOptions& options() const { return options_; }

 private:
  void update_parameter(const ParameterRef& parameter, std::span<Tensor> slots,
                        std::int64_t step, IndexRange range) override;
  AdamOptions options_;
};

// ---- construction by name (the CLI)

// What a command line may set. An unset field keeps the chosen optimizer's default
// (SgdOptions / AdamOptions; "adamw" defaults weight_decay to adamw_default_weight_decay).
// Setting a field the optimizer does not have (momentum for "adam", beta1 for "sgd") throws,
// so that a flag is never silently ignored.
struct OptimizerSettings {
  std::optional<double> lr;
  std::optional<double> momentum;  // sgd
  std::optional<bool> nesterov;    // sgd
  std::optional<double> beta1;     // adam, adamw
  std::optional<double> beta2;     // adam, adamw
  std::optional<double> eps;       // adam, adamw
  std::optional<double> weight_decay;
  std::optional<bool> decay_biases_and_norm;
};

// "sgd", "adam", "adamw".
const std::vector<std::string>& optimizer_names();
// Throws std::invalid_argument for an unknown name (listing the known ones), a setting the
// optimizer does not have, or invalid options.
std::unique_ptr<Optimizer> make_optimizer(std::string_view name,
                                          std::vector<ParameterRef> parameters,
                                          const OptimizerSettings& settings = {});

}  // namespace bnorm
