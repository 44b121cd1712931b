#include "bnorm/train/evaluate.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "bnorm/data/loader.hpp"
#include "bnorm/io/state_dict.hpp"
#include "bnorm/layers/batchnorm.hpp"
#include "bnorm/layers/loss.hpp"
#include "bnorm/layers/residual.hpp"

namespace bnorm {
namespace {

// Puts every BatchNorm (inside residual blocks too) into training mode, so that it normalizes
// with batch statistics; the rest stays in eval mode (no dropout).
void use_batch_statistics(Layer& layer) {
  if (auto* bn = dynamic_cast<BatchNorm*>(&layer)) {
    bn->train(true);
  } else if (auto* seq = dynamic_cast<Sequential*>(&layer)) {
    for (std::size_t i = 0; i < seq->size(); ++i) use_batch_statistics(seq->at(i));
  } else if (auto* res = dynamic_cast<Residual*>(&layer)) {
    use_batch_statistics(res->body());
    use_batch_statistics(res->shortcut());
  }
}

}  // namespace

BnStatistics parse_bn_statistics(const std::string& name) {
  if (name == "running") return BnStatistics::running;
  if (name == "batch") return BnStatistics::batch;
  throw std::invalid_argument("--bn-stats must be running or batch, got '" + name + "'");
}

EvalResult evaluate(Sequential& net, const Dataset& data, const EvalOptions& options) {
  if (options.batch_size < 1)
    throw std::invalid_argument("evaluate: batch size must be >= 1, got " + std::to_string(options.batch_size));
  const bool was_training = net.is_training();
  net.eval();
  // Batch statistics update the running estimates as a side effect: keep a copy to put back.
  std::vector<NamedTensor> saved_state;
  if (options.bn_statistics == BnStatistics::batch) {
    saved_state = state_dict(net);
    use_batch_statistics(net);
  }

  EvalResult result;
  double loss_sum = 0.0;
  std::vector<std::int64_t> indices;
  for (std::int64_t begin = 0; begin < data.size(); begin += options.batch_size) {
    const std::int64_t end = std::min(data.size(), begin + options.batch_size);
    indices.resize(static_cast<std::size_t>(end - begin));
    std::iota(indices.begin(), indices.end(), begin);
    const Tensor x = gather_examples(data.images, indices, options.layout);
    const Tensor logits = net.forward(x);
    const std::span<const std::int32_t> labels(data.labels.data() + begin, static_cast<std::size_t>(end - begin));
    const CrossEntropyResult batch = softmax_cross_entropy(logits, labels, false);
    loss_sum += batch.loss * static_cast<double>(end - begin);
    result.examples += end - begin;
    result.accuracy += static_cast<double>(batch.correct);
  }
  if (result.examples > 0) {
    result.loss = loss_sum / static_cast<double>(result.examples);
    result.accuracy /= static_cast<double>(result.examples);
  }

  if (options.bn_statistics == BnStatistics::batch) {
    SafetensorsFile original{.source = "saved state", .tensors = std::move(saved_state)};
    load_state_dict(net, original);
  }
  net.train(was_training);
  return result;
}

}  // namespace bnorm
