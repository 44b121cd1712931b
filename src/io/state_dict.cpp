// Layer state <-> named tensors, and model files (bnorm/io/state_dict.hpp).
#include "bnorm/io/state_dict.hpp"

#include <set>
#include <stdexcept>
#include <unordered_map>

namespace bnorm {
namespace {

// One piece of a layer's state with where to copy a loaded value.
struct StateSlot {
  std::string name;
  Tensor* tensor = nullptr;        // F32 parameter or buffer
  std::int64_t* count = nullptr;   // I64 () counter

  StoredDType dtype() const { return tensor ? StoredDType::f32 : StoredDType::i64; }
  std::vector<std::int64_t> shape() const { return tensor ? tensor->shape().dims() : std::vector<std::int64_t>{}; }
};

std::vector<StateSlot> state_slots(Layer& layer) {
  std::vector<StateSlot> slots;
  for (const ParameterRef& p : layer.parameters()) slots.push_back({.name = p.name, .tensor = p.value});
  for (const BufferRef& b : layer.buffers()) {
    if ((b.tensor == nullptr) == (b.count == nullptr))
      throw std::logic_error("bnorm: buffer " + b.name + " of " + layer.describe() +
                             " must set exactly one of tensor and count");
    slots.push_back({.name = b.name, .tensor = b.tensor, .count = b.count});
  }
  std::set<std::string> names;
  for (const StateSlot& s : slots)
    if (!names.insert(s.name).second)
      throw std::logic_error("bnorm: " + layer.describe() + " reports two pieces of state named " + s.name);
  return slots;
}

bool has_prefix(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const std::string& p : prefixes)
    if (name.compare(0, p.size(), p) == 0) return true;
  return false;
}

}  // namespace

std::vector<NamedTensor> state_dict(Layer& layer) {
  std::vector<NamedTensor> tensors;
  for (const StateSlot& s : state_slots(layer))
    tensors.push_back(s.tensor ? named_tensor(s.name, *s.tensor) : named_scalar_i64(s.name, *s.count));
  return tensors;
}

void load_state_dict(Layer& layer, const SafetensorsFile& file, const LoadStateOptions& options) {
  const std::vector<StateSlot> slots = state_slots(layer);
  std::unordered_map<std::string, const NamedTensor*> stored;
  // Pass 1: check everything, collecting every problem.
  std::vector<std::string> problems;
  for (const NamedTensor& t : file.tensors)
    if (!stored.emplace(t.name, &t).second) problems.push_back(t.name + ": appears twice in the file");
  std::set<std::string> expected;
  for (const StateSlot& s : slots) {
    expected.insert(s.name);
    const auto it = stored.find(s.name);
    if (it == stored.end()) {
      problems.push_back(s.name + ": missing from the file (model expects " +
                         to_string(s.dtype()) + " " + shape_to_string(s.shape()) + ")");
      continue;
    }
    const NamedTensor& t = *it->second;
    if (t.dtype != s.dtype() || t.shape != s.shape())
      problems.push_back(s.name + ": model expects " + to_string(s.dtype()) + " " + shape_to_string(s.shape()) +
                         ", file has " + t.describe());
    else if (t.bytes.size() != static_cast<std::size_t>(t.numel()) * stored_dtype_size(t.dtype))
      problems.push_back(s.name + ": " + t.describe() + " holds " + std::to_string(t.bytes.size()) + " bytes");
  }
  for (const NamedTensor& t : file.tensors)
    if (!expected.count(t.name) && !has_prefix(t.name, options.ignored_prefixes))
      problems.push_back(t.name + ": unexpected in the file (" + t.describe() + "), the model has no such state");
  if (!problems.empty()) {
    std::string message = "bnorm: cannot load " + file.source + " into the " + layer.kind() + ": " +
                          std::to_string(problems.size()) + (problems.size() == 1 ? " problem" : " problems");
    for (const std::string& p : problems) message += "\n  " + p;
    throw std::runtime_error(message);
  }

  // Pass 2: copy. Nothing here can fail on content that passed pass 1.
  for (const StateSlot& s : slots) {
    const NamedTensor& t = *stored.at(s.name);
    if (s.tensor) copy_into(t, *s.tensor);
    else *s.count = scalar_i64_of(t);
  }
}

void save_model(const std::filesystem::path& path, Layer& model, const Metadata& metadata) {
  save_safetensors(path, state_dict(model), metadata);
}

Metadata load_model(const std::filesystem::path& path, Layer& model, const LoadStateOptions& options) {
  SafetensorsFile file = load_safetensors(path);
  load_state_dict(model, file, options);
  return std::move(file.metadata);
}

}  // namespace bnorm
