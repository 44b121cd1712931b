// Layer state <-> model files (bnorm/io/state_dict.hpp): names and types of a state_dict,
// bitwise round trips of whole models, checkpoints with extra tensors, and the strict,
// all-or-nothing loader. Models are built from BatchNorm2d and small layers defined here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "bnorm/io/state_dict.hpp"
#include "bnorm/layers/batchnorm.hpp"
#include "bnorm/util/random.hpp"
#include "layer_gradcheck.hpp"

namespace bnorm {
namespace {

// A layer with every kind of state: a vector and a rank-4 parameter (in a chosen layout), an
// f32 buffer and a counter. Its computation does not matter here.
class StatefulLayer : public Layer {
 public:
  explicit StatefulLayer(Layout kernel_layout = Layout::channels_first)
      : scale_(Tensor::full({3}, 1.0f)), scale_grad_(Tensor::zeros({3})),
        kernel_(Tensor::zeros({2, 3, 1, 2}, kernel_layout)), kernel_grad_(Tensor::zeros({2, 3, 1, 2}, kernel_layout)),
        ema_(Tensor::zeros({2, 3})) {}

  std::string kind() const override { return "stateful"; }
  std::string describe() const override { return "stateful()"; }
  Shape output_shape(const Shape& input) const override { return input; }
  Tensor forward(const Tensor& x) override { return x; }
  Tensor backward(const Tensor& dy) override { return dy; }
  std::vector<ParameterRef> parameters() override {
    return {{.name = "scale", .value = &scale_, .grad = &scale_grad_, .role = ParameterRole::weight},
            {.name = "kernel", .value = &kernel_, .grad = &kernel_grad_, .role = ParameterRole::weight}};
  }
  std::vector<BufferRef> buffers() override {
    return {{.name = "ema", .tensor = &ema_}, {.name = "steps", .count = &steps_}};
  }

  Tensor scale_, scale_grad_, kernel_, kernel_grad_, ema_;
  std::int64_t steps_ = 0;
};

// A minimal container that prefixes its children's names, as Sequential does.
class Stack : public Layer {
 public:
  Stack& add(std::string name, std::unique_ptr<Layer> layer) {
    children_.emplace_back(std::move(name), std::move(layer));
    return *this;
  }
  std::string kind() const override { return "stack"; }
  std::string describe() const override { return "stack(" + std::to_string(children_.size()) + " layers)"; }
  Shape output_shape(const Shape& input) const override { return input; }
  Tensor forward(const Tensor& x) override {
    Tensor y = x;
    for (auto& [_, layer] : children_) y = layer->forward(y);
    return y;
  }
  Tensor backward(const Tensor& dy) override { return dy; }
  std::vector<ParameterRef> parameters() override {
    std::vector<ParameterRef> all;
    for (auto& [name, layer] : children_)
      for (ParameterRef p : layer->parameters()) all.push_back({name + "." + p.name, p.value, p.grad, p.role});
    return all;
  }
  std::vector<BufferRef> buffers() override {
    std::vector<BufferRef> all;
    for (auto& [name, layer] : children_)
      for (BufferRef b : layer->buffers()) all.push_back({name + "." + b.name, b.tensor, b.count});
    return all;
  }
  void train(bool on) override {
    Layer::train(on);
    for (auto& [_, layer] : children_) layer->train(on);
  }
  Layer& child(std::size_t i) { return *children_.at(i).second; }

 private:
  std::vector<std::pair<std::string, std::unique_ptr<Layer>>> children_;
};

std::unique_ptr<Stack> make_model(Layout kernel_layout = Layout::channels_first, std::int64_t bn2_features = 4) {
  auto model = std::make_unique<Stack>();
  model->add("bn1", std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = 3}));
  model->add("extra", std::make_unique<StatefulLayer>(kernel_layout));
  model->add("bn2", std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = bn2_features, .affine = false}));
  return model;
}

// Every float and counter of the model set to seeded random values.
void randomize(Layer& model, std::uint64_t seed) {
  Rng rng(seed);
  for (ParameterRef& p : model.parameters())
    for (std::int64_t i = 0; i < p.value->numel(); ++i) p.value->data_f32()[i] = static_cast<float>(rng.normal());
  for (BufferRef& b : model.buffers()) {
    if (b.tensor)
      for (std::int64_t i = 0; i < b.tensor->numel(); ++i) b.tensor->data_f32()[i] = static_cast<float>(rng.uniform() + 0.5);
    else *b.count = static_cast<std::int64_t>(rng.below(1000000));
  }
}

void expect_same_state(Layer& a, Layer& b) {
  const std::vector<NamedTensor> sa = state_dict(a), sb = state_dict(b);
  ASSERT_EQ(sa.size(), sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].name, sb[i].name);
    EXPECT_EQ(sa[i].describe(), sb[i].describe()) << sa[i].name;
    EXPECT_TRUE(sa[i].bytes == sb[i].bytes) << sa[i].name << " differs";
  }
}

SafetensorsFile in_memory(std::vector<NamedTensor> tensors) {
  return {.source = "test.safetensors", .tensors = std::move(tensors)};
}

std::string load_error(Layer& model, const SafetensorsFile& file, const LoadStateOptions& options = {}) {
  try {
    load_state_dict(model, file, options);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(loaded)";
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("bnorm_io_state_" + std::to_string(::getpid()) + "_" + name);
}

TEST(StateDict, NamesTypesAndShapesFollowPyTorch) {
  auto model = make_model();
  std::vector<std::string> described;
  for (const NamedTensor& t : state_dict(*model)) described.push_back(t.name + " " + t.describe());
  EXPECT_EQ(described, (std::vector<std::string>{
                           "bn1.weight F32 (3)", "bn1.bias F32 (3)", "extra.scale F32 (3)",
                           "extra.kernel F32 (2, 3, 1, 2)", "bn1.running_mean F32 (3)", "bn1.running_var F32 (3)",
                           "bn1.num_batches_tracked I64 ()", "extra.ema F32 (2, 3)", "extra.steps I64 ()",
                           "bn2.running_mean F32 (4)", "bn2.running_var F32 (4)", "bn2.num_batches_tracked I64 ()"}));
}

TEST(StateDict, SaveAndLoadModelIsBitwise) {
  auto saved = make_model();
  randomize(*saved, 1);
  // Real running statistics too: two training steps of the first BN.
  Rng rng(2);
  auto& bn1 = static_cast<BatchNorm2d&>(saved->child(0));
  for (int step = 0; step < 2; ++step) bn1.forward(testing::random_tensor({4, 3, 2, 2}, Layout::channels_first, rng));
  const Metadata metadata = {{spec_metadata_key, "bn > stateful > bn(affine=false)"}, {"input_shape", "3,2,2"}};
  const std::filesystem::path path = temp_path("model.safetensors");
  save_model(path, *saved, metadata);

  auto loaded = make_model();
  randomize(*loaded, 99);
  EXPECT_EQ(load_model(path, *loaded), metadata);
  std::filesystem::remove(path);
  expect_same_state(*saved, *loaded);
  EXPECT_EQ(static_cast<BatchNorm2d&>(loaded->child(0)).num_batches_tracked(), bn1.num_batches_tracked());

  // The loaded model computes exactly what the saved one does.
  saved->eval();
  loaded->eval();
  const Tensor x = testing::random_tensor({2, 3, 2, 2}, Layout::channels_first, rng);
  const Tensor ya = saved->child(0).forward(x), yb = loaded->child(0).forward(x);
  for (std::int64_t i = 0; i < ya.numel(); ++i) EXPECT_EQ(ya.data_f32()[i], yb.data_f32()[i]);
}

TEST(StateDict, LoadsAcrossParameterLayouts) {
  auto nhwc = make_model(Layout::channels_last);
  randomize(*nhwc, 3);
  auto nchw = make_model(Layout::channels_first);
  load_state_dict(*nchw, in_memory(state_dict(*nhwc)));
  const Tensor& a = static_cast<StatefulLayer&>(nhwc->child(1)).kernel_;  // memory (n, h, w, c)
  const Tensor& b = static_cast<StatefulLayer&>(nchw->child(1)).kernel_;  // memory (n, c, h, w)
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int w = 0; w < 2; ++w) EXPECT_EQ(b.data_f32()[(n * 3 + c) * 2 + w], a.data_f32()[(n * 2 + w) * 3 + c]);
  expect_same_state(*nhwc, *nchw);  // state_dict is in logical order either way
}

TEST(StateDict, CheckpointsAddNamedTensorsReadBackGenerically) {
  auto model = make_model();
  randomize(*model, 4);
  std::vector<NamedTensor> tensors = state_dict(*model);
  const Rng::State rng_state = Rng(77).state();
  tensors.push_back(named_values<std::uint64_t>("trainer.rng", {4}, rng_state));
  tensors.push_back(named_scalar_i64("trainer.step", 1234));
  for (const ParameterRef& p : model->parameters())
    tensors.push_back(named_tensor("optimizer." + p.name + ".momentum", *p.grad));
  const std::filesystem::path path = temp_path("ckpt.safetensors");
  save_safetensors(path, tensors, {{"epoch", "3"}});
  const SafetensorsFile file = load_safetensors(path);
  std::filesystem::remove(path);

  EXPECT_EQ(file.metadata_at("epoch"), "3");
  const std::vector<std::uint64_t> words = values_of<std::uint64_t>(file.at("trainer.rng"), {4});
  EXPECT_TRUE(std::equal(words.begin(), words.end(), rng_state.begin()));
  EXPECT_EQ(scalar_i64_of(file.at("trainer.step")), 1234);
  Tensor momentum = Tensor::full({2, 3, 1, 2}, 5.0f);
  copy_into(file.at("optimizer.extra.kernel.momentum"), momentum);
  EXPECT_EQ(momentum.data_f32()[0], 0.0f);

  // The model part loads when the checkpoint's own prefixes are named, and only then.
  auto restored = make_model();
  const std::string strict = load_error(*restored, file);
  EXPECT_NE(strict.find("trainer.step: unexpected in the file (I64 ())"), std::string::npos) << strict;
  load_state_dict(*restored, file, {.ignored_prefixes = {"optimizer.", "trainer."}});
  expect_same_state(*model, *restored);
}

// Each bad file names the problem, and the model keeps every value it had.
TEST(StateDict, StrictLoadErrorsLeaveTheModelUnchanged) {
  auto source = make_model();
  randomize(*source, 5);
  const std::vector<NamedTensor> good = state_dict(*source);

  auto without = [&](const std::string& name) {
    std::vector<NamedTensor> t;
    for (const NamedTensor& g : good)
      if (g.name != name) t.push_back(g);
    return t;
  };
  auto replaced = [&](NamedTensor replacement) {
    std::vector<NamedTensor> t = good;
    for (NamedTensor& g : t)
      if (g.name == replacement.name) g = replacement;
    return t;
  };
  auto with_extra = good;
  with_extra.push_back(named_values<float>("bn3.weight", {4}, std::vector<float>(4)));

  const std::vector<std::pair<std::vector<NamedTensor>, std::string>> cases = {
      {without("bn2.num_batches_tracked"), "bn2.num_batches_tracked: missing from the file (model expects I64 ())"},
      {with_extra, "bn3.weight: unexpected in the file (F32 (4)), the model has no such state"},
      {replaced(named_values<float>("bn2.running_var", {5}, std::vector<float>(5))),
       "bn2.running_var: model expects F32 (4), file has F32 (5)"},
      {replaced(named_values<float>("extra.kernel", {3, 2, 1, 2}, std::vector<float>(12))),
       "extra.kernel: model expects F32 (2, 3, 1, 2), file has F32 (3, 2, 1, 2)"},
      {replaced(named_values<float>("bn2.num_batches_tracked", {}, std::vector<float>(1))),
       "bn2.num_batches_tracked: model expects I64 (), file has F32 ()"},
      {replaced(named_values<std::int64_t>("bn2.num_batches_tracked", {1}, std::vector<std::int64_t>(1))),
       "bn2.num_batches_tracked: model expects I64 (), file has I64 (1)"},
  };
  for (const auto& [tensors, expected] : cases) {
    auto model = make_model();
    randomize(*model, 6);
    auto before = make_model();
    randomize(*before, 6);
    const std::string message = load_error(*model, in_memory(tensors));
    EXPECT_NE(message.find(expected), std::string::npos) << message;
    EXPECT_NE(message.find("test.safetensors"), std::string::npos) << message;
    EXPECT_NE(message.find("1 problem"), std::string::npos) << message;
    expect_same_state(*model, *before);
  }
}

TEST(StateDict, EveryProblemIsListedAtOnce) {
  auto model = make_model(Layout::channels_first, /*bn2_features=*/4);
  auto wider = make_model(Layout::channels_first, /*bn2_features=*/6);
  std::vector<NamedTensor> tensors = state_dict(*wider);
  tensors.erase(tensors.begin());  // bn1.weight
  const std::string message = load_error(*model, in_memory(tensors));
  EXPECT_NE(message.find("3 problems"), std::string::npos) << message;
  EXPECT_NE(message.find("\n  bn1.weight: missing from the file (model expects F32 (3))"), std::string::npos) << message;
  EXPECT_NE(message.find("\n  bn2.running_mean: model expects F32 (4), file has F32 (6)"), std::string::npos) << message;
  EXPECT_NE(message.find("\n  bn2.running_var: model expects F32 (4), file has F32 (6)"), std::string::npos) << message;
}

TEST(StateDict, DuplicateOrMalformedInputIsRejected) {
  auto model = make_model();
  std::vector<NamedTensor> twice = state_dict(*model);
  twice.push_back(twice.front());
  EXPECT_NE(load_error(*model, in_memory(twice)).find("bn1.weight: appears twice in the file"), std::string::npos);
  std::vector<NamedTensor> short_bytes = state_dict(*model);
  short_bytes[0].bytes.resize(4);
  EXPECT_NE(load_error(*model, in_memory(short_bytes)).find("bn1.weight: F32 (3) holds 4 bytes"), std::string::npos);

  Stack clash;
  clash.add("a", std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = 2}));
  clash.add("a", std::make_unique<BatchNorm2d>(BatchNormOptions{.num_features = 2}));
  EXPECT_THROW(state_dict(clash), std::logic_error);
}

TEST(StateDict, LoadModelReportsFileErrorsWithThePath) {
  auto model = make_model();
  const std::filesystem::path path = temp_path("absent.safetensors");
  try {
    load_model(path, *model);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bnorm
