// Learning-rate schedules: validation of the options and the closed-form lr(step) that
// bnorm/train/schedule.hpp specifies.
#include "bnorm/train/schedule.hpp"

#include <cmath>
#include <numbers>
#include <sstream>
#include <stdexcept>

namespace bnorm {
namespace {

std::string format_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

[[noreturn]] void reject(ScheduleKind kind, const std::string& what) {
  throw std::invalid_argument(std::string("schedule ") + to_string(kind) + ": " + what);
}

}  // namespace

const char* to_string(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::constant:
      return "constant";
    case ScheduleKind::step:
      return "step";
    case ScheduleKind::cosine:
      return "cosine";
  }
  return "?";
}

LrSchedule::LrSchedule(ScheduleKind kind, double base_lr, const ScheduleOptions& options)
    : kind_(kind), base_lr_(base_lr), options_(options) {
  const ScheduleOptions& o = options_;
  if (!std::isfinite(base_lr) || base_lr < 0.0)
    reject(kind, "base_lr must be a finite number >= 0, got " + format_number(base_lr));
  if (o.warmup_steps < 0)
    reject(kind, "warmup_steps must be >= 0, got " + std::to_string(o.warmup_steps));
  if (!(o.warmup_start_factor >= 0.0 && o.warmup_start_factor <= 1.0))
    reject(kind,
           "warmup_start_factor must be in [0, 1], got " + format_number(o.warmup_start_factor));
  if (kind == ScheduleKind::step) {
    if (o.step_size <= 0) reject(kind, "step_size must be > 0, got " + std::to_string(o.step_size));
    if (!(o.gamma > 0.0 && o.gamma <= 1.0))
      reject(kind, "gamma must be in (0, 1], got " + format_number(o.gamma));
  }
  if (kind == ScheduleKind::cosine) {
    if (o.total_steps <= o.warmup_steps)
      reject(kind, "total_steps must be > warmup_steps, got total_steps " +
                       std::to_string(o.total_steps) + " and warmup_steps " +
                       std::to_string(o.warmup_steps));
    if (!(o.min_lr >= 0.0 && o.min_lr <= base_lr))
      reject(kind, "min_lr must be in [0, base_lr = " + format_number(base_lr) + "], got " +
                       format_number(o.min_lr));
  }
}

double LrSchedule::lr(std::int64_t step) const {
  if (step < 0) reject(kind_, "step must be >= 0, got " + std::to_string(step));
  const ScheduleOptions& o = options_;
  if (step < o.warmup_steps) {
    const double progress = static_cast<double>(step) / static_cast<double>(o.warmup_steps);
    return base_lr_ * (o.warmup_start_factor + (1.0 - o.warmup_start_factor) * progress);
  }
  const std::int64_t t = step - o.warmup_steps;
  switch (kind_) {
    case ScheduleKind::constant:
      return base_lr_;
    case ScheduleKind::step:
      return base_lr_ * std::pow(o.gamma, static_cast<double>(t / o.step_size));
    case ScheduleKind::cosine: {
      const std::int64_t length = o.total_steps - o.warmup_steps;
      if (t >= length) return o.min_lr;
      const double progress = static_cast<double>(t) / static_cast<double>(length);
      return o.min_lr + (base_lr_ - o.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    }
  }
  return base_lr_;
}

std::string LrSchedule::describe() const {
  const ScheduleOptions& o = options_;
  std::string out = std::string(to_string(kind_)) + "(base_lr=" + format_number(base_lr_);
  if (kind_ == ScheduleKind::step)
    out += ", step_size=" + std::to_string(o.step_size) + ", gamma=" + format_number(o.gamma);
  if (kind_ == ScheduleKind::cosine)
    out += ", min_lr=" + format_number(o.min_lr) + ", total_steps=" + std::to_string(o.total_steps);
  out += ", warmup_steps=" + std::to_string(o.warmup_steps);
  if (o.warmup_steps > 0) out += ", warmup_start_factor=" + format_number(o.warmup_start_factor);
  return out + ")";
}

const std::vector<std::string>& schedule_names() {
  static const std::vector<std::string> names{"constant", "step", "cosine"};
  return names;
}

ScheduleKind schedule_kind_from_name(std::string_view name) {
  if (name == "constant") return ScheduleKind::constant;
  if (name == "step") return ScheduleKind::step;
  if (name == "cosine") return ScheduleKind::cosine;
  std::string known;
  for (const std::string& n : schedule_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown schedule '" + std::string(name) + "' (known: " + known +
                              ")");
}

LrSchedule make_schedule(std::string_view name, double base_lr, const ScheduleOptions& options) {
  return LrSchedule(schedule_kind_from_name(name), base_lr, options);
}

}  // namespace bnorm
