// Weight initialization (bnorm/model/init.hpp). Values are drawn in double from the Rng and
// rounded once to float, element by element in memory order.
#include "bnorm/model/init.hpp"

#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

namespace bnorm {
namespace {

const std::pair<InitScheme, const char*> scheme_names[] = {
    {InitScheme::automatic, "auto"},           {InitScheme::kaiming_normal, "kaiming-normal"},
    {InitScheme::kaiming_uniform, "kaiming-uniform"}, {InitScheme::xavier_normal, "xavier-normal"},
    {InitScheme::xavier_uniform, "xavier-uniform"},   {InitScheme::gaussian, "gaussian"},
};

std::string strip_suffix(const std::string& name, const std::string& suffix) {
  if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    return name.substr(0, name.size() - suffix.size());
  return name;
}

bool ends_with(const std::string& s, const std::string& suffix) { return strip_suffix(s, suffix) != s; }

// Constants take no draws, so adding a BN layer does not shift the weights of the others.
void fill(Tensor& t, float value) {
  float* p = t.data_f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = value;
}

}  // namespace

const char* to_string(InitScheme scheme) {
  for (const auto& [s, name] : scheme_names)
    if (s == scheme) return name;
  return "?";
}

InitScheme parse_init_scheme(const std::string& name) {
  std::string known;
  for (const auto& [s, n] : scheme_names) {
    if (name == n) return s;
    known += (known.empty() ? "" : ", ") + std::string(n);
  }
  throw std::invalid_argument("unknown initialization '" + name + "'; expected one of " + known);
}

Fans compute_fans(const Shape& weight_shape) {
  if (weight_shape.rank() < 2)
    throw std::invalid_argument("compute_fans: a weight has rank >= 2 ((out, in) or (out, in/groups, k, k)), got " +
                                weight_shape.to_string());
  std::int64_t receptive = 1;
  for (int axis = 2; axis < weight_shape.rank(); ++axis) receptive *= weight_shape[axis];
  return {.fan_in = weight_shape[1] * receptive, .fan_out = weight_shape[0] * receptive};
}

double activation_gain(std::optional<Activation> activation) {
  if (!activation) return 1.0;
  switch (*activation) {
    case Activation::relu: return std::sqrt(2.0);
    case Activation::sigmoid: return 1.0;
    case Activation::tanh: return 5.0 / 3.0;
  }
  return 1.0;
}

void init_normal(Tensor& t, Rng& rng, double mean, double stddev) {
  float* p = t.data_f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(mean + stddev * rng.normal());
}

void init_uniform(Tensor& t, Rng& rng, double low, double high) {
  float* p = t.data_f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(low + (high - low) * rng.uniform());
}

void init_kaiming_normal(Tensor& weight, Rng& rng, double gain) {
  const Fans f = compute_fans(weight.shape());
  init_normal(weight, rng, 0.0, gain / std::sqrt(static_cast<double>(f.fan_in)));
}

void init_kaiming_uniform(Tensor& weight, Rng& rng, double gain) {
  const Fans f = compute_fans(weight.shape());
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(f.fan_in));
  init_uniform(weight, rng, -bound, bound);
}

void init_xavier_normal(Tensor& weight, Rng& rng, double gain) {
  const Fans f = compute_fans(weight.shape());
  init_normal(weight, rng, 0.0, gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out)));
}

void init_xavier_uniform(Tensor& weight, Rng& rng, double gain) {
  const Fans f = compute_fans(weight.shape());
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(f.fan_in + f.fan_out));
  init_uniform(weight, rng, -bound, bound);
}

void initialize(Layer& net, const std::vector<LayerNote>& notes, const InitOptions& options, Rng& rng) {
  std::map<std::string, const LayerNote*> note_of;
  for (const LayerNote& note : notes) note_of[note.name] = &note;
  const std::vector<ParameterRef> parameters = net.parameters();
  // Biases need their weight's fan_in, whatever the order in which a layer lists the two.
  std::map<std::string, std::int64_t> fan_in_of;
  for (const ParameterRef& p : parameters)
    if (p.role == ParameterRole::weight) fan_in_of[strip_suffix(p.name, ".weight")] = compute_fans(p.value->shape()).fan_in;

  for (const ParameterRef& p : parameters) {
    Tensor& t = *p.value;
    switch (p.role) {
      case ParameterRole::norm:
        fill(t, ends_with(p.name, "weight") ? 1.0f : 0.0f);  // gamma 1, beta 0
        break;
      case ParameterRole::bias: {
        if (options.bias == BiasInit::zero) {
          fill(t, 0.0f);
          break;
        }
        const auto fan = fan_in_of.find(strip_suffix(p.name, ".bias"));
        if (fan == fan_in_of.end())
          throw std::invalid_argument("initialize: bias '" + p.name + "' has no weight beside it to take fan_in from");
        const double bound = 1.0 / std::sqrt(static_cast<double>(fan->second));
        init_uniform(t, rng, -bound, bound);
        break;
      }
      case ParameterRole::weight: {
        const auto note = note_of.find(strip_suffix(p.name, ".weight"));
        const std::optional<Activation> activation =
            note == note_of.end() ? std::nullopt : note->second->activation;
        const double gain = options.gain.value_or(activation_gain(activation));
        switch (options.scheme) {
          case InitScheme::automatic:
            if (activation == Activation::relu) init_kaiming_normal(t, rng, gain);
            else init_xavier_normal(t, rng, gain);
            break;
          case InitScheme::kaiming_normal: init_kaiming_normal(t, rng, gain); break;
          case InitScheme::kaiming_uniform: init_kaiming_uniform(t, rng, gain); break;
          case InitScheme::xavier_normal: init_xavier_normal(t, rng, gain); break;
          case InitScheme::xavier_uniform: init_xavier_uniform(t, rng, gain); break;
          case InitScheme::gaussian: init_normal(t, rng, 0.0, options.sigma); break;
        }
        break;
      }
    }
  }
}

}  // namespace bnorm
