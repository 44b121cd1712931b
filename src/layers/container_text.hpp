// container_text.hpp: text helpers shared by the container layers (Sequential, Residual).
#pragma once

#include <string>

namespace bnorm::detail {

// Indents every line after the first by two spaces, so a child's multi-line describe() nests
// under its parent's.
inline std::string indent_continuation_lines(const std::string& text) {
  std::string out;
  for (char c : text) {
    out += c;
    if (c == '\n') out += "  ";
  }
  return out;
}

}  // namespace bnorm::detail
