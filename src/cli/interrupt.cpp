#include "cli/interrupt.hpp"

#include <atomic>
#include <csignal>

namespace bnorm::cli {
namespace {

std::atomic<bool> stop_flag{false};

extern "C" void on_stop_signal(int signal_number) {
  stop_flag.store(true);
  std::signal(signal_number, SIG_DFL);  // the next one kills
}

}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

bool stop_requested() { return stop_flag.load(); }

}  // namespace bnorm::cli
