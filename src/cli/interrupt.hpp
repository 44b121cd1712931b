// interrupt.hpp: Ctrl-C (SIGINT) and SIGTERM as a request to stop, not a kill.
//
// The first signal sets a flag that the training loop polls between steps: it then writes a
// checkpoint and exits cleanly. A second signal restores the default action, so a user can
// still kill a program that does not react.
#pragma once

namespace bnorm::cli {

void install_stop_handlers();
bool stop_requested();

}  // namespace bnorm::cli
