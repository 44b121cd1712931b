// Sequential: layers applied in order, with names for their parameters (sequential.hpp).
#include "bnorm/layers/sequential.hpp"

#include <algorithm>
#include <stdexcept>
#include <typeinfo>

#include "layers/container_text.hpp"

namespace bnorm {
namespace {

// Runs f(); an std::invalid_argument or a plain std::logic_error (backward before forward)
// from it is rethrown as the same type with context() in front, so that an error deep in a
// network names the path to the layer that raised it. context is built only on error.
template <class F, class C>
auto with_context(F f, C context) -> decltype(f()) {
  try {
    return f();
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(context() + ": " + e.what());
  } catch (const std::logic_error& e) {
    if (typeid(e) != typeid(std::logic_error)) throw;
    throw std::logic_error(context() + ": " + e.what());
  }
}

}  // namespace

Layer& Sequential::add(std::unique_ptr<Layer> layer, std::string name) {
  if (!layer) throw std::invalid_argument("sequential: add() of a null layer");
  auto taken = [&](const std::string& n) { return std::find(names_.begin(), names_.end(), n) != names_.end(); };
  if (name.empty()) {
    const std::string kind = layer->kind();
    const auto same_kind = std::count_if(layers_.begin(), layers_.end(),
                                         [&](const auto& l) { return l->kind() == kind; });
    for (auto k = same_kind + 1;; ++k) {
      name = kind + std::to_string(k);
      if (!taken(name)) break;
    }
  } else if (name.find('.') != std::string::npos) {
    throw std::invalid_argument("sequential: layer name '" + name +
                                "' contains '.', which separates the levels of parameter names");
  } else if (taken(name)) {
    throw std::invalid_argument("sequential: a layer named '" + name + "' already exists (layer " +
                                std::to_string(std::find(names_.begin(), names_.end(), name) - names_.begin()) +
                                ")");
  }
  layer->train(training_);
  layers_.push_back(std::move(layer));
  names_.push_back(std::move(name));
  update_input_grads();
  return *layers_.back();
}

void Sequential::update_input_grads() {
  bool needed = compute_input_grad_;
  first_backward_ = needed ? 0 : layers_.size();
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->set_compute_input_grad(needed);
    if (!needed && !layers_[i]->parameters().empty()) {
      first_backward_ = std::min(first_backward_, i);
      needed = true;
    }
  }
}

std::string Sequential::layer_context(std::size_t i) const {
  return "sequential: layer " + std::to_string(i) + " '" + names_[i] + "'";
}

std::string Sequential::describe() const {
  if (layers_.empty()) return "sequential()";
  std::string out = "sequential(\n";
  for (std::size_t i = 0; i < layers_.size(); ++i)
    out += "  " + names_[i] + ": " + detail::indent_continuation_lines(layers_[i]->describe()) + "\n";
  return out + ")";
}

Shape Sequential::output_shape(const Shape& input) const {
  Shape shape = input;
  for (std::size_t i = 0; i < layers_.size(); ++i)
    shape = with_context([&] { return layers_[i]->output_shape(shape); },
                         [&] { return layer_context(i) + " rejected input " + shape.to_string(); });
  return shape;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (std::size_t i = 0; i < layers_.size(); ++i)
    y = with_context([&] { return layers_[i]->forward(y); }, [&] {
      return layer_context(i) + " failed on input " +
             (y.defined() ? y.describe() : std::string("an undefined tensor"));
    });
  forwarded_ = true;
  return y;
}

Tensor Sequential::backward(const Tensor& dy) {
  if (first_backward_ == layers_.size()) {  // no layer, or none with parameters and no dx wanted
    if (!forwarded_) throw std::logic_error("sequential: backward called before forward");
    return compute_input_grad_ ? dy : Tensor();
  }  // otherwise the layers tell, with their names
  Tensor g = dy;
  for (std::size_t i = layers_.size(); i-- > first_backward_;) {
    g = with_context([&] { return layers_[i]->backward(g); }, [&] {
      return layer_context(i) + " failed in backward on dy " +
             (g.defined() ? g.describe() : std::string("an undefined tensor"));
    });
    if (i > first_backward_ && !g.defined())
      throw std::logic_error(layer_context(i) +
                             " returned no dx in backward, which only the first layer that computes gradients may skip");
  }
  return g;
}

std::vector<ParameterRef> Sequential::parameters() {
  std::vector<ParameterRef> all;
  for (std::size_t i = 0; i < layers_.size(); ++i)
    for (ParameterRef& p : layers_[i]->parameters()) {
      p.name = names_[i] + "." + p.name;
      all.push_back(std::move(p));
    }
  return all;
}

std::vector<BufferRef> Sequential::buffers() {
  std::vector<BufferRef> all;
  for (std::size_t i = 0; i < layers_.size(); ++i)
    for (BufferRef& b : layers_[i]->buffers()) {
      b.name = names_[i] + "." + b.name;
      all.push_back(std::move(b));
    }
  return all;
}

void Sequential::train(bool on) {
  training_ = on;
  for (auto& layer : layers_) layer->train(on);
}

void Sequential::set_compute_input_grad(bool on) {
  compute_input_grad_ = on;
  update_input_grads();
}

}  // namespace bnorm
