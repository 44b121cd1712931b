#include "cli/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace bnorm::cli {

ProgressBar::ProgressBar(std::FILE* out) : out_(out), terminal_(isatty(fileno(out)) != 0) {}

void ProgressBar::start(std::string label, std::int64_t total) {
  label_ = std::move(label);
  total_ = std::max<std::int64_t>(total, 1);
  last_reported_tenth_ = 0;
  phase_start_ = last_draw_ = std::chrono::steady_clock::now();
  drawn_ = false;
}

void ProgressBar::update(std::int64_t done, double loss, double accuracy, double images_per_second) {
  const auto now = std::chrono::steady_clock::now();
  if (terminal_) {
    if (done < total_ && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  } else {
    const std::int64_t tenth = done * 10 / total_;
    if (tenth == last_reported_tenth_ || done == total_) return;  // finish() prints the last one
    last_reported_tenth_ = tenth;
  }
  last_draw_ = now;
  draw(done, loss, accuracy, images_per_second);
}

void ProgressBar::draw(std::int64_t done, double loss, double accuracy, double images_per_second) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - phase_start_).count();
  const double eta = done > 0 ? elapsed * static_cast<double>(total_ - done) / static_cast<double>(done) : 0.0;
  constexpr int width = 24;
  const int filled = static_cast<int>(width * done / total_);
  std::string bar(width, ' ');
  std::fill_n(bar.begin(), filled, '=');
  if (filled < width) bar[filled] = '>';
  std::fprintf(out_, "%s%s [%s] %lld/%lld loss %.4f acc %.2f%% %.0f img/s ETA %s%s",
               terminal_ ? "\r" : "", label_.c_str(), bar.c_str(), static_cast<long long>(done),
               static_cast<long long>(total_), loss, 100.0 * accuracy, images_per_second,
               format_duration(eta).c_str(), terminal_ ? "\033[K" : "\n");
  std::fflush(out_);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (terminal_ && drawn_) std::fputc('\n', out_);
  std::fflush(out_);
  drawn_ = false;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long long total = std::llround(seconds);
  char buffer[32];
  if (total >= 3600)
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60, total % 60);
  else
    std::snprintf(buffer, sizeof buffer, "%lld:%02lld", total / 60, total % 60);
  return buffer;
}

}  // namespace bnorm::cli
