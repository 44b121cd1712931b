// bnorm/train/schedule.hpp: learning-rate schedules.
//
// What a schedule represents: a pure function lr(step) of its options and the base learning
// rate, where step is the number of updates done so far (0 for the first update, i.e.
// Optimizer::step_count() just before Optimizer::step()). It keeps no state, so a resumed run
// needs only the step count to continue with the same learning rates.
//
// Kinds (t = step - warmup_steps, the clock of the main schedule; lr = base_lr at t = 0):
//   constant   lr = base_lr
//   step       lr = base_lr * gamma^floor(t / step_size)         (torch StepLR per step)
//   cosine     lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * t / (total_steps - warmup_steps)))
//   / 2
//              for t <= total_steps - warmup_steps, min_lr after (torch CosineAnnealingLR's
//              closed form, without restarts). total_steps counts the whole run, warm-up
//              included, so the run ends at min_lr.
// Warm-up (any kind, warmup_steps = W > 0): for step < W,
//   lr = base_lr * (warmup_start_factor + (1 - warmup_start_factor) * step / W),
// a straight line from warmup_start_factor * base_lr at step 0 to base_lr at step W, where the
// main schedule starts. With warmup_start_factor 0 the first update has lr 0 (it still feeds
// momentum buffers and Adam moments).
//
// Not here: per-epoch schedules (a step is one update; convert epochs with steps per epoch),
// restarts, schedules driven by a validation metric.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bnorm {

enum class ScheduleKind : std::uint8_t { constant, step, cosine };
const char* to_string(ScheduleKind kind);  // "constant", "step", "cosine"

// Options of every kind in one struct; a kind reads only its own fields (and the warm-up ones).
struct ScheduleOptions {
  // step: multiply by gamma every step_size steps (after warm-up).
  std::int64_t step_size = 0;  // > 0 for kind step
  double gamma = 0.1;          // in (0, 1]
  // cosine: anneal from base_lr to min_lr over total_steps (warm-up included).
  std::int64_t total_steps = 0;  // > warmup_steps for kind cosine
  double min_lr = 0.0;           // in [0, base_lr]
  // Linear warm-up over the first warmup_steps steps, from warmup_start_factor * base_lr.
  std::int64_t warmup_steps = 0;     // >= 0; 0 = none
  double warmup_start_factor = 0.0;  // in [0, 1]
};

class LrSchedule {
 public:
  // Throws std::invalid_argument for invalid options or base_lr (naming the option and value).
  LrSchedule(ScheduleKind kind, double base_lr, const ScheduleOptions& options = {});

  // The learning rate of update number `step` (0-based). Requires step >= 0.
  double lr(std::int64_t step) const;

  ScheduleKind kind() const { return kind_; }
  double base_lr() const { return base_lr_; }
  const ScheduleOptions& options() const { return options_; }
  // "cosine(base_lr=0.1, min_lr=0, total_steps=1000, warmup_steps=100, warmup_start_factor=0)"
  std::string describe() const;

 private:
  ScheduleKind kind_;
  double base_lr_;
  ScheduleOptions options_;
};

// "constant", "step", "cosine".
const std::vector<std::string>& schedule_names();
// Throws std::invalid_argument for an unknown name, listing the known ones.
ScheduleKind schedule_kind_from_name(std::string_view name);
// LrSchedule(schedule_kind_from_name(name), base_lr, options): the CLI's entry point.
LrSchedule make_schedule(std::string_view name, double base_lr,
                         const ScheduleOptions& options = {});

}  // namespace bnorm
