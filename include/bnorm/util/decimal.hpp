// bnorm/util/decimal.hpp: doubles as text that reads back to the same bits (model-file and
// checkpoint metadata are strings).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bnorm {

// "%.17g": enough digits that parse_decimal gives back exactly `value`.
std::string exact_decimal(double value);
// The whole of `text` as a number, or nullopt when it is not one (or has trailing characters).
std::optional<double> parse_decimal(std::string_view text);

}  // namespace bnorm
