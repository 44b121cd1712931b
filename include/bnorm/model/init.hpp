// bnorm/model/init.hpp: weight initialization, driven by a bnorm::Rng so that one seed gives the
// same model on every machine and standard library.
//
// Fans (PyTorch's _calculate_fan_in_and_fan_out): a Linear weight (out, in) has fan_in = in,
// fan_out = out; a Conv weight (out, in/groups, k, k) has fan_in = in/groups * k * k and
// fan_out = out * k * k.
// Schemes, with gain g:
//   kaiming_normal    N(0, g / sqrt(fan_in))                  He et al. 2015; g = sqrt(2) for relu
//   kaiming_uniform   U(-b, b), b = g * sqrt(3 / fan_in)      same variance as the normal one
//   xavier_normal     N(0, g * sqrt(2 / (fan_in + fan_out)))  Glorot & Bengio 2010
//   xavier_uniform    U(-b, b), b = g * sqrt(6 / (fan_in + fan_out))
//   gaussian          N(0, sigma)                             "small random Gaussian values"
//   automatic         per layer, from the activation that follows it (LayerNote::activation):
//                     relu -> kaiming_normal with g = sqrt(2); sigmoid -> xavier_normal with
//                     g = 1; tanh -> xavier_normal with g = 5/3; none -> xavier_normal, g = 1.
//                     This is torch.nn.init.calculate_gain's table applied where it belongs.
// Biases start at zero (the default: with BN after most layers a bias is dropped anyway, and a
// zero bias is what the formulas above assume), or PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
// BatchNorm: gamma 1, beta 0 (the layer is constructed that way; initialize() resets it too).
#pragma once

#include <cstdint>
#include <optional>

#include "bnorm/layers/activation.hpp"
#include "bnorm/layers/layer.hpp"
#include "bnorm/model/build.hpp"
#include "bnorm/tensor/tensor.hpp"
#include "bnorm/util/random.hpp"

namespace bnorm {

enum class InitScheme : std::uint8_t {
  automatic, kaiming_normal, kaiming_uniform, xavier_normal, xavier_uniform, gaussian,
};
const char* to_string(InitScheme scheme);  // "auto", "kaiming-normal", ..., "gaussian"
// Parses the names above; throws std::invalid_argument listing them.
InitScheme parse_init_scheme(const std::string& name);

enum class BiasInit : std::uint8_t { zero, pytorch_uniform };

struct InitOptions {
  InitScheme scheme = InitScheme::automatic;
  // kaiming_* / xavier_*: nullopt = the gain of the activation that follows (automatic's table);
  // a value forces that gain on every layer.
  std::optional<double> gain;
  double sigma = 0.01;  // gaussian
  BiasInit bias = BiasInit::zero;
};

struct Fans {
  std::int64_t fan_in = 0;
  std::int64_t fan_out = 0;
};
// weight_shape: (out, in) or (out, in/groups, k, k) (any rank >= 2: trailing dims are the
// receptive field). Throws std::invalid_argument for rank < 2.
Fans compute_fans(const Shape& weight_shape);

// torch.nn.init.calculate_gain: relu sqrt(2), sigmoid 1, tanh 5/3, none 1.
double activation_gain(std::optional<Activation> activation);

void init_normal(Tensor& t, Rng& rng, double mean, double stddev);
void init_uniform(Tensor& t, Rng& rng, double low, double high);
void init_kaiming_normal(Tensor& weight, Rng& rng, double gain);
void init_kaiming_uniform(Tensor& weight, Rng& rng, double gain);
void init_xavier_normal(Tensor& weight, Rng& rng, double gain);
void init_xavier_uniform(Tensor& weight, Rng& rng, double gain);

// Initializes every parameter of `net` in parameters() order (so one seed gives one model):
// weights by `options` (automatic / the default gain uses the note whose name prefixes the
// parameter), biases by options.bias, BN gamma 1 and beta 0. Buffers are left as they are.
void initialize(Layer& net, const std::vector<LayerNote>& notes, const InitOptions& options, Rng& rng);

}  // namespace bnorm
