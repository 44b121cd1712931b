// bnorm/model/summary.hpp: a table of a built network, as data and as text.
//
// One row per layer in network order; a residual block has its own row followed by the rows of
// its body and shortcut (depth + 1; an empty shortcut appears as one "identity" row). Shapes
// are per example (no batch dimension).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bnorm/layers/sequential.hpp"
#include "bnorm/model/build.hpp"
#include "bnorm/tensor/tensor.hpp"

namespace bnorm {

struct SummaryRow {
  std::string name;          // full path: "conv1", "residual1.body.conv2", "residual1.shortcut"
  int depth = 0;             // 0 at the top level, +1 inside each residual block
  std::string kind;          // Layer::kind(), or "identity"
  std::string description;   // Layer::describe(); for a residual block one line naming its parts
  Shape output_shape;        // per example
  std::int64_t parameters = 0;  // for a residual row: its whole body and shortcut
  bool bias_dropped = false;    // bias left out because bn follows (LayerNote)
};

struct Summary {
  Shape input_shape;  // per example
  std::vector<SummaryRow> rows;
  std::int64_t total_parameters = 0;
  std::int64_t total_buffer_elements = 0;  // BN running statistics (f32 tensors)
  int biases_dropped = 0;
};

// input_shape per example; notes from build_network (for the bias marks). Throws what the
// layers' output_shape throws when the input does not fit.
Summary summarize(Sequential& net, const Shape& input_shape, const std::vector<LayerNote>& notes);

// A fixed-width table with a header, a '*' after the description of each layer whose bias was
// dropped, and the totals; ends with a newline.
std::string format_summary(const Summary& summary);

}  // namespace bnorm
