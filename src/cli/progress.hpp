// progress.hpp: the training progress line of `bnorm train`.
//
// On a terminal it redraws one line ("epoch 2/3 [=======>    ] 310/468 loss 0.312 acc 88.9%
// 1450 img/s ETA 0:41") at most ten times a second; when stderr is not a terminal (CI logs,
// files) it prints a plain line every ten percent instead, so logs stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace bnorm::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::FILE* out = stderr);

  // Starts a phase of `total` steps (an epoch), labelled e.g. "epoch 2/3".
  void start(std::string label, std::int64_t total);
  // After step `done` (1-based) of the phase; loss and accuracy are running means.
  void update(std::int64_t done, double loss, double accuracy, double images_per_second);
  // Ends the phase line (the caller prints the epoch summary after it).
  void finish();

 private:
  void draw(std::int64_t done, double loss, double accuracy, double images_per_second);

  std::FILE* out_;
  bool terminal_;
  std::string label_;
  std::int64_t total_ = 0;
  std::int64_t last_reported_tenth_ = -1;
  std::chrono::steady_clock::time_point phase_start_, last_draw_;
  bool drawn_ = false;
};

// "1:02:03" or "4:05".
std::string format_duration(double seconds);

}  // namespace bnorm::cli
