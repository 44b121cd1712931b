// Builds a Sequential from a parsed spec (bnorm/model/build.hpp). Shapes are tracked per
// example (no batch dimension); layers are asked for their output shape with a batch of one,
// so the layer's own arithmetic, not a copy of it here, decides what comes next. The checks
// done here first exist to give errors that name the spec word and suggest a fix.
#include "bnorm/model/build.hpp"

#include <algorithm>
#include <memory>

#include "bnorm/layers/batchnorm.hpp"
#include "bnorm/layers/conv2d.hpp"
#include "bnorm/layers/dropout.hpp"
#include "bnorm/layers/flatten.hpp"
#include "bnorm/layers/linear.hpp"
#include "bnorm/layers/pooling.hpp"
#include "bnorm/layers/residual.hpp"
#include "bnorm/util/random.hpp"

namespace bnorm {
namespace {

using Dims = std::vector<std::int64_t>;  // per-example shape

std::string to_string(const Dims& dims) {
  std::string out = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + ")";
}

Shape batch_of_one(const Dims& dims) {
  Dims with_batch{1};
  with_batch.insert(with_batch.end(), dims.begin(), dims.end());
  return Shape(with_batch);
}

Dims per_example(const Shape& shape) {
  const Dims all = shape.dims();
  return Dims(all.begin() + 1, all.end());
}

bool is_transparent(SpecKind kind) {  // between a weight layer and its activation
  return kind == SpecKind::bn || kind == SpecKind::dropout || kind == SpecKind::maxpool ||
         kind == SpecKind::avgpool || kind == SpecKind::flatten || kind == SpecKind::gap;
}

std::optional<Activation> as_activation(SpecKind kind) {
  if (kind == SpecKind::relu) return Activation::relu;
  if (kind == SpecKind::sigmoid) return Activation::sigmoid;
  if (kind == SpecKind::tanh) return Activation::tanh;
  return std::nullopt;
}

// The activation that the output of layers[i] meets first; `after` is what follows the sequence.
std::optional<Activation> activation_after(const std::vector<LayerSpec>& layers, std::size_t i,
                                           std::optional<Activation> after) {
  for (std::size_t j = i + 1; j < layers.size(); ++j) {
    if (const auto a = as_activation(layers[j].kind)) return a;
    if (!is_transparent(layers[j].kind)) return std::nullopt;
  }
  return after;
}

class Builder {
 public:
  Builder(const SpecAst& spec, const BuildOptions& options, std::vector<LayerNote>& notes)
      : spec_(spec), options_(options), notes_(notes) {}

  // Appends `layers` to `seq`; notes are named relative to `seq`. Returns the output shape.
  Dims build_sequence(const std::vector<LayerSpec>& layers, Dims shape, Sequential& seq,
                      std::optional<Activation> after) {
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const LayerSpec& layer = layers[i];
      const bool bn_follows = i + 1 < layers.size() && layers[i + 1].kind == SpecKind::bn;
      const std::optional<Activation> activation = activation_after(layers, i, after);
      if (layer.kind == SpecKind::residual) {
        shape = add_residual(layer, shape, seq, activation);
        continue;
      }
      std::unique_ptr<Layer> made = make_layer(layer, shape, bn_follows);
      shape = output_of(layer, *made, shape);
      const bool weighted = layer.kind == SpecKind::conv || layer.kind == SpecKind::linear;
      seq.add(std::move(made));
      if (weighted)
        notes_.push_back({.name = seq.name_at(seq.size() - 1),
                          .position = layer.position,
                          .bias_dropped = !layer.bias.has_value() && bn_follows,
                          .activation = activation});
    }
    return shape;
  }

 private:
  [[noreturn]] void fail(const LayerSpec& layer, const std::string& message) const {
    throw SpecError(spec_.source, spec_.text, layer.position, message);
  }

  Dims output_of(const LayerSpec& layer, const Layer& made, const Dims& shape) const {
    try {
      return per_example(made.output_shape(batch_of_one(shape)));
    } catch (const std::invalid_argument& e) {
      fail(layer, "'" + layer.word + "' cannot take an input of shape " + to_string(shape) +
                      " per example: " + e.what());
    }
  }

  void require_image(const LayerSpec& layer, const Dims& shape) const {
    if (shape.size() != 3)
      fail(layer, "'" + layer.word + "' needs a (C, H, W) input per example, got " + to_string(shape) +
                      (shape.size() < 3 ? ": image layers must come before flatten and gap" : ""));
  }

  // The spatial extent a window of `extent` (dilated kernel) covers must fit the padded input.
  void require_window_fits(const LayerSpec& layer, const Dims& shape, std::int64_t extent) const {
    for (int axis : {1, 2})
      if (shape[axis] + 2 * layer.padding < extent)
        fail(layer, "'" + layer.word + "': a window of " + std::to_string(extent) + " does not fit the input " +
                        to_string(shape) + " with padding " + std::to_string(layer.padding));
  }

  std::unique_ptr<Layer> make_layer(const LayerSpec& layer, const Dims& shape, bool bn_follows) {
    switch (layer.kind) {
      case SpecKind::conv: {
        require_image(layer, shape);
        const std::int64_t in = shape[0];
        if (in % layer.groups != 0 || layer.out % layer.groups != 0)
          fail(layer, "'" + layer.word + "': groups=" + std::to_string(layer.groups) + " must divide the input channels (" +
                          std::to_string(in) + ") and the output channels (" + std::to_string(layer.out) + ")");
        require_window_fits(layer, shape, layer.dilation * (layer.kernel - 1) + 1);
        return std::make_unique<Conv2d>(Conv2dOptions{.in_channels = in,
                                                      .out_channels = layer.out,
                                                      .kernel_size = layer.kernel,
                                                      .stride = layer.stride,
                                                      .padding = layer.padding,
                                                      .dilation = layer.dilation,
                                                      .groups = layer.groups,
                                                      .bias = layer.bias.value_or(!bn_follows),
                                                      .layout = options_.layout});
      }
      case SpecKind::linear:
        if (shape.size() != 1)
          fail(layer, "'" + layer.word + "' needs a flat input (features) per example, got " + to_string(shape) +
                          ": add 'flatten' (or 'gap') before it; inputs are never flattened silently");
        return std::make_unique<Linear>(LinearOptions{
            .in_features = shape[0], .out_features = layer.out, .bias = layer.bias.value_or(!bn_follows)});
      case SpecKind::bn: {
        const bool flat = shape.size() == 1 || shape.size() == 2;
        const bool image = shape.size() == 3;
        const char* wanted = layer.bn_rank == SpecBnRank::bn1d ? "(features) or (C, L)"
                             : layer.bn_rank == SpecBnRank::bn2d ? "(C, H, W)"
                                                                 : "(features), (C, L) or (C, H, W)";
        if ((layer.bn_rank == SpecBnRank::bn1d && !flat) || (layer.bn_rank == SpecBnRank::bn2d && !image) ||
            (!flat && !image))
          fail(layer, "'" + layer.word + "' needs a " + wanted + " input per example, got " + to_string(shape) +
                          " (rank " + std::to_string(shape.size()) + ")");
        const BatchNormOptions bn{.num_features = shape[0],
                                  .eps = layer.eps.value_or(options_.bn_eps),
                                  .momentum = layer.momentum.value_or(options_.bn_momentum),
                                  .affine = layer.affine,
                                  .layout = image ? options_.layout : Layout::channels_first};
        if (image) return std::make_unique<BatchNorm2d>(bn);
        return std::make_unique<BatchNorm1d>(bn);
      }
      case SpecKind::maxpool:
      case SpecKind::avgpool: {
        require_image(layer, shape);
        require_window_fits(layer, shape, layer.kernel);
        if (2 * layer.padding > layer.kernel)
          fail(layer, "'" + layer.word + "': padding " + std::to_string(layer.padding) +
                          " must be at most half the kernel " + std::to_string(layer.kernel));
        const Pool2dOptions pool{.kernel_size = layer.kernel, .stride = layer.stride, .padding = layer.padding,
                                 .layout = options_.layout};
        if (layer.kind == SpecKind::maxpool) return std::make_unique<MaxPool2d>(pool);
        return std::make_unique<AvgPool2d>(pool);
      }
      case SpecKind::gap:
        require_image(layer, shape);
        return std::make_unique<GlobalAvgPool2d>(options_.layout);
      case SpecKind::relu: return std::make_unique<ActivationLayer>(Activation::relu);
      case SpecKind::sigmoid: return std::make_unique<ActivationLayer>(Activation::sigmoid);
      case SpecKind::tanh: return std::make_unique<ActivationLayer>(Activation::tanh);
      case SpecKind::dropout:
        // "drop" as the stream: the seeds of the dropout layers do not collide with other uses.
        return std::make_unique<Dropout>(DropoutOptions{
            .p = layer.p.value_or(options_.dropout_p),
            .seed = counter_hash(options_.seed, 0x64726f70, dropout_count_++)});
      case SpecKind::flatten: return std::make_unique<Flatten>();
      case SpecKind::residual: break;
    }
    fail(layer, "internal error: no layer for '" + layer.word + "'");
  }

  Dims add_residual(const LayerSpec& layer, const Dims& input, Sequential& seq, std::optional<Activation> after) {
    const std::size_t first_note = notes_.size();
    Sequential body;
    const Dims out = build_sequence(layer.body, input, body, after);
    for (std::size_t i = first_note; i < notes_.size(); ++i) notes_[i].name = "body." + notes_[i].name;

    const std::size_t first_shortcut_note = notes_.size();
    Sequential shortcut;
    if (layer.has_shortcut) {
      const Dims got = build_sequence(layer.shortcut, input, shortcut, after);
      if (got != out)
        fail(layer, "res: the body maps " + to_string(input) + " to " + to_string(out) + " but the shortcut gives " +
                        to_string(got) + "; both must give the same shape");
    } else if (out != input) {
      add_projection(layer, input, out, shortcut, after);
    }
    for (std::size_t i = first_shortcut_note; i < notes_.size(); ++i) notes_[i].name = "shortcut." + notes_[i].name;

    seq.add(std::make_unique<Residual>(std::move(body), std::move(shortcut)));
    const std::string& name = seq.name_at(seq.size() - 1);
    for (std::size_t i = first_note; i < notes_.size(); ++i) notes_[i].name = name + "." + notes_[i].name;
    return out;
  }

  // The automatic shortcut when the body changes the shape: conv1x1 with the stride that maps
  // the input's H, W onto the output's (or a linear for flat inputs), then bn if the body has one.
  void add_projection(const LayerSpec& layer, const Dims& input, const Dims& out, Sequential& shortcut,
                      std::optional<Activation> after) {
    LayerSpec projection{.kind = SpecKind::conv, .word = "res", .position = layer.position, .out = out[0],
                         .kernel = 1, .stride = 1};
    if (input.size() == 3 && out.size() == 3) {
      std::int64_t stride = 0;
      for (std::int64_t s = 1; s <= std::max(input[1], input[2]) && stride == 0; ++s)
        if ((input[1] - 1) / s + 1 == out[1] && (input[2] - 1) / s + 1 == out[2]) stride = s;
      if (stride == 0)
        fail(layer, "res: the body maps " + to_string(input) + " to " + to_string(out) +
                        ", which no strided conv1x1 projection reproduces; write the shortcut yourself: "
                        "res(<body> | <shortcut>)");
      projection.stride = stride;
    } else if (input.size() == 1 && out.size() == 1) {
      projection.kind = SpecKind::linear;
    } else {
      fail(layer, "res: the body maps " + to_string(input) + " to " + to_string(out) +
                      "; an automatic projection exists only for (C, H, W) -> (C', H', W') and (F) -> (F'); "
                      "write the shortcut yourself: res(<body> | <shortcut>)");
    }
    std::vector<LayerSpec> layers{projection};
    const bool body_has_bn = std::any_of(layer.body.begin(), layer.body.end(),
                                         [](const LayerSpec& l) { return l.kind == SpecKind::bn; });
    if (body_has_bn) layers.push_back({.kind = SpecKind::bn, .word = "res", .position = layer.position});
    const std::size_t first = notes_.size();
    build_sequence(layers, input, shortcut, after);
    for (std::size_t i = first; i < notes_.size(); ++i) notes_[i].projection = true;
  }

  const SpecAst& spec_;
  const BuildOptions& options_;
  std::vector<LayerNote>& notes_;
  std::uint64_t dropout_count_ = 0;
};

}  // namespace

BuiltNetwork build_network(const SpecAst& spec, const BuildOptions& options) {
  const Dims input = options.input_shape.dims();
  if (input.empty() || input.size() > 4 ||
      std::any_of(input.begin(), input.end(), [](std::int64_t d) { return d < 1; }))
    throw std::invalid_argument("build_network: the per-example input shape must have rank 1 to 4 and sizes >= 1 "
                                "((C, H, W) for images, (features) for vectors), got " +
                                options.input_shape.to_string());
  BuiltNetwork built;
  Builder builder(spec, options, built.notes);
  built.output_shape = Shape(builder.build_sequence(spec.layers, input, built.net, std::nullopt));
  return built;
}

}  // namespace bnorm
