// The network summary (bnorm/model/summary.hpp).
#include "bnorm/model/summary.hpp"

#include <algorithm>
#include <set>

#include "bnorm/layers/residual.hpp"

namespace bnorm {
namespace {

Shape strip_batch(const Shape& shape) {
  const std::vector<std::int64_t> dims = shape.dims();
  return Shape(std::vector<std::int64_t>(dims.begin() + 1, dims.end()));
}

Shape add_batch(const Shape& shape) {
  std::vector<std::int64_t> dims{1};
  for (std::int64_t d : shape.dims()) dims.push_back(d);
  return Shape(dims);
}

// Residual::describe() spells out its children over several lines; they get rows of their own
// here, so the block's row says only what it is made of.
std::string describe_residual(Residual& r) {
  const std::size_t n = r.shortcut().size();
  return "residual(body: " + std::to_string(r.body().size()) + " layers, shortcut: " +
         (n == 0 ? std::string("identity") : std::to_string(n) + " layers") + ")";
}

struct Walker {
  const std::set<std::string>& dropped;
  std::vector<SummaryRow>& rows;

  // Appends the rows of `seq` and returns its output shape (with the batch of one).
  Shape walk(Sequential& seq, const std::string& prefix, Shape shape, int depth) {
    for (std::size_t i = 0; i < seq.size(); ++i) {
      Layer& layer = seq.at(i);
      const std::string name = prefix + seq.name_at(i);
      const Shape out = layer.output_shape(shape);
      auto* residual = dynamic_cast<Residual*>(&layer);
      rows.push_back({.name = name,
                      .depth = depth,
                      .kind = layer.kind(),
                      .description = residual ? describe_residual(*residual) : layer.describe(),
                      .output_shape = strip_batch(out),
                      .parameters = layer.parameter_count(),
                      .bias_dropped = dropped.count(name) > 0});
      if (residual) {
        walk(residual->body(), name + ".body.", shape, depth + 1);
        if (residual->shortcut().size() == 0)
          rows.push_back({.name = name + ".shortcut", .depth = depth + 1, .kind = "identity",
                          .description = "identity", .output_shape = strip_batch(shape)});
        else
          walk(residual->shortcut(), name + ".shortcut.", shape, depth + 1);
      }
      shape = out;
    }
    return shape;
  }
};

std::string thousands(std::int64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

Summary summarize(Sequential& net, const Shape& input_shape, const std::vector<LayerNote>& notes) {
  std::set<std::string> dropped;
  for (const LayerNote& note : notes)
    if (note.bias_dropped) dropped.insert(note.name);
  Summary summary{.input_shape = input_shape};
  Walker{dropped, summary.rows}.walk(net, "", add_batch(input_shape), 0);
  summary.total_parameters = net.parameter_count();
  for (const BufferRef& b : net.buffers())
    if (b.tensor) summary.total_buffer_elements += b.tensor->numel();
  summary.biases_dropped = static_cast<int>(
      std::count_if(summary.rows.begin(), summary.rows.end(), [](const SummaryRow& r) { return r.bias_dropped; }));
  return summary;
}

std::string format_summary(const Summary& summary) {
  struct Cells { std::string name, description, shape, parameters; };
  std::vector<Cells> cells{{"layer", "description", "output", "params"},
                           {"input", "", summary.input_shape.to_string(), ""}};
  for (const SummaryRow& r : summary.rows)
    cells.push_back({std::string(2 * r.depth, ' ') + r.name, r.description + (r.bias_dropped ? " *" : ""),
                     r.output_shape.to_string(), r.kind == "identity" ? "" : thousands(r.parameters)});
  std::size_t w[4] = {0, 0, 0, 0};
  for (const Cells& c : cells) {
    w[0] = std::max(w[0], c.name.size());
    w[1] = std::max(w[1], c.description.size());
    w[2] = std::max(w[2], c.shape.size());
    w[3] = std::max(w[3], c.parameters.size());
  }
  auto pad = [](const std::string& s, std::size_t width) { return s + std::string(width - s.size(), ' '); };
  auto pad_left = [](const std::string& s, std::size_t width) { return std::string(width - s.size(), ' ') + s; };
  std::string out;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const Cells& c = cells[i];
    std::string line = pad(c.name, w[0]) + "  " + pad(c.description, w[1]) + "  " + pad(c.shape, w[2]) + "  " +
                       pad_left(c.parameters, w[3]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
    if (i == 0) out += std::string(w[0] + w[1] + w[2] + w[3] + 6, '-') + "\n";
  }
  out += "total parameters: " + thousands(summary.total_parameters) +
         "; buffers (running statistics): " + thousands(summary.total_buffer_elements) + " values\n";
  if (summary.biases_dropped > 0)
    out += "* bias dropped (" + std::to_string(summary.biases_dropped) +
           " layers): bn follows, and its beta does the bias's job\n";
  return out;
}

}  // namespace bnorm
