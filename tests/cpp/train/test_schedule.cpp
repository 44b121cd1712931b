// Learning-rate schedules (bnorm/train/schedule.hpp): values at chosen steps worked out by
// hand, warm-up boundaries, cosine endpoints, purity (resume from a step count), bad options.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numbers>
#include <stdexcept>
#include <string>

#include "bnorm/train/schedule.hpp"

namespace bnorm {
namespace {

constexpr double tol = 1e-12;

TEST(Schedule, Constant) {
  const LrSchedule s(ScheduleKind::constant, 0.1);
  EXPECT_EQ(s.lr(0), 0.1);
  EXPECT_EQ(s.lr(1), 0.1);
  EXPECT_EQ(s.lr(1'000'000'000'000), 0.1);
}

TEST(Schedule, StepDecay) {
  const LrSchedule s(ScheduleKind::step, 0.8, {.step_size = 3, .gamma = 0.5});
  EXPECT_EQ(s.lr(0), 0.8);
  EXPECT_EQ(s.lr(2), 0.8);
  EXPECT_EQ(s.lr(3), 0.4);  // the first decay is at step_size
  EXPECT_EQ(s.lr(5), 0.4);
  EXPECT_EQ(s.lr(6), 0.2);
  EXPECT_EQ(s.lr(29), 0.8 / 512);  // floor(29 / 3) = 9 decays
}

TEST(Schedule, CosineEndpointsAndMiddle) {
  const LrSchedule s(ScheduleKind::cosine, 1.0, {.total_steps = 10, .min_lr = 0.1});
  EXPECT_EQ(s.lr(0), 1.0);
  EXPECT_NEAR(s.lr(5), 0.55, tol);  // halfway: the mean of base and minimum
  // step 1 of 4 by hand: 0.1 + 0.9 * (1 + cos(pi/4)) / 2 = 0.1 + 0.9 * 0.85355339059327373
  const LrSchedule quarter(ScheduleKind::cosine, 1.0, {.total_steps = 4, .min_lr = 0.1});
  EXPECT_NEAR(quarter.lr(1), 0.86819805153394636, tol);
  EXPECT_NEAR(quarter.lr(3), 0.1 + 0.9 * 0.14644660940672627, tol);
  EXPECT_EQ(s.lr(10), 0.1);  // the end of the run
  EXPECT_EQ(s.lr(11), 0.1);  // and after it
  EXPECT_EQ(s.lr(1000), 0.1);
  double previous = s.lr(0);
  for (std::int64_t step = 1; step <= 12; ++step) {
    EXPECT_LE(s.lr(step), previous) << "cosine never increases, step " << step;
    previous = s.lr(step);
  }
  // To zero by default.
  EXPECT_EQ(LrSchedule(ScheduleKind::cosine, 0.5, {.total_steps = 3}).lr(3), 0.0);
}

TEST(Schedule, WarmupFromZero) {
  const LrSchedule s(ScheduleKind::constant, 0.2, {.warmup_steps = 4});
  EXPECT_EQ(s.lr(0), 0.0);
  EXPECT_NEAR(s.lr(1), 0.05, tol);
  EXPECT_NEAR(s.lr(2), 0.1, tol);
  EXPECT_NEAR(s.lr(3), 0.15, tol);
  EXPECT_EQ(s.lr(4), 0.2);  // the first step after warm-up is at the base rate
  EXPECT_EQ(s.lr(100), 0.2);
}

TEST(Schedule, WarmupFromStartFactor) {
  const LrSchedule s(ScheduleKind::constant, 2.0, {.warmup_steps = 4, .warmup_start_factor = 0.1});
  EXPECT_NEAR(s.lr(0), 0.2, tol);
  EXPECT_NEAR(s.lr(2), 2.0 * (0.1 + 0.9 * 0.5), tol);  // 1.1
  EXPECT_EQ(s.lr(4), 2.0);
  // Start factor 1: no ramp at all.
  const LrSchedule flat(ScheduleKind::constant, 2.0,
                        {.warmup_steps = 4, .warmup_start_factor = 1.0});
  EXPECT_EQ(flat.lr(0), 2.0);
}

// The main schedule starts when warm-up ends: cosine anneals over the remaining steps.
TEST(Schedule, WarmupThenCosine) {
  const LrSchedule s(ScheduleKind::cosine, 1.0,
                     {.total_steps = 14, .min_lr = 0.2, .warmup_steps = 4});
  EXPECT_EQ(s.lr(0), 0.0);
  EXPECT_NEAR(s.lr(2), 0.5, tol);
  EXPECT_EQ(s.lr(4), 1.0);
  EXPECT_NEAR(s.lr(9), 0.6, tol);  // halfway through the 10 cosine steps
  EXPECT_EQ(s.lr(14), 0.2);
  EXPECT_EQ(s.lr(15), 0.2);
}

TEST(Schedule, WarmupThenStep) {
  const LrSchedule s(ScheduleKind::step, 1.0, {.step_size = 3, .gamma = 0.1, .warmup_steps = 2});
  EXPECT_NEAR(s.lr(1), 0.5, tol);
  EXPECT_EQ(s.lr(2), 1.0);
  EXPECT_EQ(s.lr(4), 1.0);
  EXPECT_NEAR(s.lr(5), 0.1, tol);  // step_size steps after warm-up
  EXPECT_NEAR(s.lr(8), 0.01, tol);
}

// lr(step) depends only on the options and the step: a schedule made anew (a resumed run)
// gives the same values, in any order of asking.
TEST(Schedule, PureFunctionOfStep) {
  const ScheduleOptions options{
      .total_steps = 50, .min_lr = 0.01, .warmup_steps = 5, .warmup_start_factor = 0.2};
  const LrSchedule a = make_schedule("cosine", 0.3, options);
  std::vector<double> forward;
  for (std::int64_t step = 0; step < 60; ++step) forward.push_back(a.lr(step));
  const LrSchedule b = make_schedule("cosine", 0.3, options);
  for (std::int64_t step = 59; step >= 0; --step) EXPECT_EQ(b.lr(step), forward[step]) << step;
}

TEST(Schedule, ByNameAndDescribe) {
  EXPECT_EQ(schedule_names(), (std::vector<std::string>{"constant", "step", "cosine"}));
  EXPECT_EQ(schedule_kind_from_name("step"), ScheduleKind::step);
  EXPECT_EQ(make_schedule("constant", 0.1).kind(), ScheduleKind::constant);
  EXPECT_EQ(
      make_schedule("cosine", 0.1, {.total_steps = 1000, .warmup_steps = 100}).describe(),
      "cosine(base_lr=0.1, min_lr=0, total_steps=1000, warmup_steps=100, warmup_start_factor=0)");
  EXPECT_EQ(make_schedule("step", 0.5, {.step_size = 30}).describe(),
            "step(base_lr=0.5, step_size=30, gamma=0.1, warmup_steps=0)");
  EXPECT_STREQ(to_string(ScheduleKind::cosine), "cosine");
}

void expect_invalid(const std::function<void()>& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one saying \"" << fragment << "\"";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Schedule, RejectsBadOptions) {
  using K = ScheduleKind;
  expect_invalid([] { make_schedule("linear", 0.1); },
                 "unknown schedule 'linear' (known: constant, step, cosine)");
  expect_invalid([] { LrSchedule(K::constant, -0.1); },
                 "schedule constant: base_lr must be a finite number >= 0, got -0.1");
  expect_invalid([] { LrSchedule(K::constant, NAN); }, "base_lr must be a finite number");
  expect_invalid([] { LrSchedule(K::step, 0.1); }, "schedule step: step_size must be > 0, got 0");
  expect_invalid([] { LrSchedule(K::step, 0.1, {.step_size = 5, .gamma = 0.0}); },
                 "gamma must be in (0, 1], got 0");
  expect_invalid([] { LrSchedule(K::step, 0.1, {.step_size = 5, .gamma = 1.5}); },
                 "gamma must be in (0, 1], got 1.5");
  expect_invalid([] { LrSchedule(K::cosine, 0.1); },
                 "total_steps must be > warmup_steps, got total_steps 0");
  expect_invalid([] { LrSchedule(K::cosine, 0.1, {.total_steps = 10, .warmup_steps = 10}); },
                 "got total_steps 10 and warmup_steps 10");
  expect_invalid([] { LrSchedule(K::cosine, 0.1, {.total_steps = 10, .min_lr = 0.2}); },
                 "min_lr must be in [0, base_lr = 0.1], got 0.2");
  expect_invalid([] { LrSchedule(K::constant, 0.1, {.warmup_steps = -1}); },
                 "warmup_steps must be >= 0, got -1");
  expect_invalid(
      [] { LrSchedule(K::constant, 0.1, {.warmup_steps = 5, .warmup_start_factor = 1.5}); },
      "warmup_start_factor must be in [0, 1], got 1.5");
  expect_invalid([] { LrSchedule(K::constant, 0.1).lr(-1); }, "step must be >= 0, got -1");
}

}  // namespace
}  // namespace bnorm
