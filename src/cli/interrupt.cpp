#include "cli/interrupt.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <csignal>
#include <thread>

namespace bnorm::cli {
namespace {

std::atomic<bool> stop_flag{false};

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Only for a signal that reaches a thread which does not block it (one started before
// install_stop_handlers); it does what the waiting thread does on the first signal.
extern "C" void on_stop_signal(int signal_number) {
  stop_flag.store(true);
  std::signal(signal_number, SIG_DFL);  // the next one kills
}

}  // namespace

// The signals are blocked in this thread before any worker thread exists, so every thread
// started later (OpenMP's, oneDNN's) inherits the block, and one thread takes them with
// sigwait. No computation is then ever interrupted by a handler: with a handler running on
// the interrupted thread, about one Ctrl-C in five during training on a loaded machine
// corrupted the heap (an abort in free() right after a oneDNN sgemm, single-threaded too).
void install_stop_handlers() {
  static std::atomic<bool> installed{false};
  if (installed.exchange(true)) return;
  const sigset_t set = stop_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  std::thread([set] {
    int signal_number = 0;
    if (sigwait(&set, &signal_number) != 0) return;
    stop_flag.store(true);
    if (sigwait(&set, &signal_number) != 0) return;
    // The second one: the default action (the process ends as killed by that signal).
    std::signal(signal_number, SIG_DFL);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    raise(signal_number);
  }).detach();
}

bool stop_requested() { return stop_flag.load(); }

}  // namespace bnorm::cli
