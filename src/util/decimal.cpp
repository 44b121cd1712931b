#include "bnorm/util/decimal.hpp"

#include <cstdio>
#include <cstdlib>

namespace bnorm {

std::string exact_decimal(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", value);
  return buffer;
}

std::optional<double> parse_decimal(std::string_view text) {
  const std::string copy(text);  // strtod needs a terminated string
  if (copy.empty()) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) return std::nullopt;
  return value;
}

}  // namespace bnorm
