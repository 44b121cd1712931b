// Built-in models (their spec text, that they build and run a batch), the summary table, and
// the Model entry points.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "bnorm/model/model.hpp"
#include "bnorm/util/random.hpp"

namespace bnorm {
namespace {

Tensor random_batch(const Shape& shape, Layout layout, std::uint64_t seed) {
  Tensor t = Tensor::empty(shape, layout);
  Rng rng(seed);
  float* p = t.data_f32();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<float>(rng.normal());
  return t;
}

TEST(Builtin, SpecText) {
  EXPECT_EQ(builtin_spec("vgg-mini"),
            "conv3x3(32) bn relu conv3x3(32) bn relu maxpool2 conv3x3(64) bn relu conv3x3(64) bn relu maxpool2 "
            "flatten linear(128) bn relu linear(10)");
  EXPECT_EQ(builtin_spec("vgg-mini", {.bn = false, .dropout = 0.5}),
            "conv3x3(32) relu conv3x3(32) relu maxpool2 conv3x3(64) relu conv3x3(64) relu maxpool2 "
            "flatten linear(128) relu dropout(0.5) linear(10)");
  EXPECT_EQ(builtin_spec("mlp-paper", {.bn_position = BnPosition::after_activation}),
            "flatten linear(100) sigmoid bn linear(100) sigmoid bn linear(100) sigmoid bn linear(10)");
  EXPECT_EQ(builtin_spec("resnet-mini"),
            "conv3x3(16) bn relu res(conv3x3(16) bn relu conv3x3(16) bn) relu "
            "res(conv3x3(32, s=2) bn relu conv3x3(32) bn) relu res(conv3x3(64, s=2) bn relu conv3x3(64) bn) relu "
            "gap linear(10)");
  EXPECT_EQ(builtin_spec("resnet-mini", {.bn_position = BnPosition::after_activation, .dropout = 0.25}),
            "conv3x3(16) relu bn res(conv3x3(16) relu bn conv3x3(16)) relu bn "
            "res(conv3x3(32, s=2) relu bn conv3x3(32)) relu bn res(conv3x3(64, s=2) relu bn conv3x3(64)) relu bn "
            "gap dropout(0.25) linear(10)");
}

TEST(Builtin, NamesAndErrors) {
  EXPECT_EQ(builtin_names(), (std::vector<std::string>{"mlp-paper", "vgg-mini", "resnet-mini"}));
  EXPECT_TRUE(is_builtin("vgg-mini"));
  EXPECT_FALSE(is_builtin("vgg"));
  try {
    builtin_spec("vgg");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "unknown built-in model 'vgg'; expected one of mlp-paper, vgg-mini, resnet-mini");
  }
  EXPECT_THROW(builtin_spec("vgg-mini", {.dropout = 1.0}), std::invalid_argument);
  EXPECT_EQ(parse_bn_position("after"), BnPosition::after_activation);
  EXPECT_THROW(parse_bn_position("middle"), std::invalid_argument);
  EXPECT_EQ(expand_spec("mlp-paper", {.bn = false}), "flatten linear(100) sigmoid linear(100) sigmoid linear(100) sigmoid linear(10)");
  EXPECT_EQ(expand_spec("relu gap"), "relu gap");
}

TEST(Builtin, ResnetMiniParameterCount) {
  Model m = Model::build(builtin_spec("resnet-mini"), {1, 28, 28});
  // stem 1*16*9 + bn 32; block 1: 2 * 16*16*9 + 2*32; block 2: 16*32*9 + 32*32*9 + 2*64 +
  // projection 16*32 + 64; block 3: 32*64*9 + 64*64*9 + 2*128 + projection 32*64 + 128;
  // linear 64*10 + 10.
  EXPECT_EQ(m.net.parameter_count(), (144 + 32) + (4608 + 64) + (4608 + 9216 + 128 + 512 + 64) +
                                         (18432 + 36864 + 256 + 2048 + 128) + 650);
  EXPECT_EQ(m.output_shape, Shape({10}));
}

struct BuiltinCase {
  std::string name;
  BuiltinOptions options;
  Layout layout;
};

TEST(Builtin, EveryVariantBuildsAndRunsABatchOfTwo) {
  // Each name with the defaults and with bn after the activation plus dropout; bn off and
  // channels_last once each (the layers are the same, the first forward's setup is the cost).
  std::vector<BuiltinCase> cases;
  for (const std::string& name : builtin_names()) {
    cases.push_back({name, {}, Layout::channels_first});
    cases.push_back({name, {.bn_position = BnPosition::after_activation, .dropout = 0.5}, Layout::channels_first});
  }
  cases.push_back({"resnet-mini", {.bn = false}, Layout::channels_first});
  cases.push_back({"vgg-mini", {}, Layout::channels_last});
  for (const BuiltinCase& c : cases) {
    SCOPED_TRACE(c.name + " bn=" + std::to_string(c.options.bn) + " " + to_string(c.options.bn_position) + " " +
                 to_string(c.layout));
    Model m = Model::build(builtin_spec(c.name, c.options), {1, 28, 28}, {.layout = c.layout, .seed = 1});
    const Tensor x = random_batch({2, 1, 28, 28}, c.layout, 5);
    m.net.train();
    Tensor y = m.net.forward(x);
    EXPECT_EQ(y.shape(), Shape({2, 10}));
    m.net.eval();
    y = m.net.forward(x);
    ASSERT_EQ(y.shape(), Shape({2, 10}));
    for (int i = 0; i < 20; ++i) EXPECT_TRUE(std::isfinite(y.data_f32()[i]));
  }
}

TEST(Summary, VggMiniRowsAndText) {
  Model m = Model::build(builtin_spec("vgg-mini"), {1, 28, 28});
  const Summary s = m.summary();
  ASSERT_EQ(s.rows.size(), 19u);
  EXPECT_EQ(s.rows[0].name, "conv1");
  EXPECT_EQ(s.rows[0].kind, "conv");
  EXPECT_EQ(s.rows[0].output_shape, Shape({32, 28, 28}));
  EXPECT_EQ(s.rows[0].parameters, 288);
  EXPECT_TRUE(s.rows[0].bias_dropped);
  EXPECT_EQ(s.rows[1].name, "bn1");
  EXPECT_EQ(s.rows[1].parameters, 64);
  EXPECT_FALSE(s.rows[1].bias_dropped);
  EXPECT_EQ(s.rows[13].output_shape, Shape({64, 7, 7}));
  EXPECT_EQ(s.rows[14].output_shape, Shape({3136}));
  EXPECT_EQ(s.rows[18].name, "linear2");
  EXPECT_FALSE(s.rows[18].bias_dropped);
  EXPECT_EQ(s.rows[18].parameters, 1290);
  EXPECT_EQ(s.total_parameters, 468138);
  EXPECT_EQ(s.biases_dropped, 5);
  EXPECT_EQ(s.total_buffer_elements, 2 * (32 + 32 + 64 + 64 + 128));
  std::int64_t sum = 0;
  for (const SummaryRow& r : s.rows) sum += r.parameters;
  EXPECT_EQ(sum, s.total_parameters);

  const std::string text = format_summary(s);
  EXPECT_NE(text.find("total parameters: 468,138"), std::string::npos) << text;
  EXPECT_NE(text.find("* bias dropped (5 layers)"), std::string::npos) << text;
  EXPECT_NE(text.find("input"), std::string::npos) << text;
  // The conv1 line: name, description with the mark, shape, count.
  const std::size_t line_start = text.find("\nconv1 ") + 1;
  const std::string line = text.substr(line_start, text.find('\n', line_start) - line_start);
  EXPECT_NE(line.find(m.net.at(0).describe() + " *"), std::string::npos) << line;
  EXPECT_NE(line.find("(32, 28, 28)"), std::string::npos) << line;
  EXPECT_EQ(line.substr(line.size() - 3), "288") << line;

  // bn after the activation: no bias is dropped, no mark, no footnote.
  Model after = Model::build(builtin_spec("vgg-mini", {.bn_position = BnPosition::after_activation}), {1, 28, 28});
  const Summary sa = after.summary();
  EXPECT_EQ(sa.biases_dropped, 0);
  EXPECT_EQ(format_summary(sa).find("bias dropped"), std::string::npos);
}

TEST(Summary, ResidualRowsAreNested) {
  Model m = Model::build(builtin_spec("resnet-mini"), {1, 28, 28});
  const Summary s = m.summary();
  std::vector<std::string> names;
  for (const SummaryRow& r : s.rows) names.push_back(r.name);
  const std::vector<std::string> head = {"conv1", "bn1", "relu1", "residual1", "residual1.body.conv1",
                                         "residual1.body.bn1", "residual1.body.relu1", "residual1.body.conv2",
                                         "residual1.body.bn2", "residual1.shortcut", "relu2", "residual2"};
  ASSERT_GE(names.size(), head.size());
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + head.size()), head);
  EXPECT_EQ(s.rows[3].description, "residual(body: 5 layers, shortcut: identity)");
  EXPECT_EQ(s.rows[11].description, "residual(body: 5 layers, shortcut: 2 layers)");
  for (const SummaryRow& r : s.rows) EXPECT_EQ(r.description.find('\n'), std::string::npos) << r.name;
  EXPECT_EQ(s.rows[9].kind, "identity");
  EXPECT_EQ(s.rows[9].depth, 1);
  EXPECT_EQ(s.rows[3].depth, 0);
  const auto projection = std::find(names.begin(), names.end(), "residual2.shortcut.conv1");
  ASSERT_NE(projection, names.end());
  const SummaryRow& p = s.rows[projection - names.begin()];
  EXPECT_TRUE(p.bias_dropped);
  EXPECT_EQ(p.output_shape, Shape({32, 14, 14}));
  EXPECT_EQ(p.parameters, 512);
  EXPECT_EQ(s.rows[11].parameters, 4608 + 9216 + 128 + 512 + 64);  // residual2 = its body + shortcut
  EXPECT_EQ(s.rows.back().output_shape, Shape({10}));
  EXPECT_NE(format_summary(s).find("  residual1.body.conv1"), std::string::npos);
}

TEST(ModelApi, KeepsSpecShapeAndOptions) {
  const std::string spec = "flatten linear(5) bn(eps=1e-3) tanh linear(2)";
  Model m = Model::build(spec, {1, 2, 2}, {.bn_momentum = std::nullopt, .seed = 4});
  EXPECT_EQ(m.spec, spec);
  EXPECT_EQ(m.input_shape, Shape({1, 2, 2}));
  EXPECT_EQ(m.output_shape, Shape({2}));
  EXPECT_EQ(m.options.seed, 4u);
  EXPECT_FALSE(m.options.bn_momentum.has_value());
  EXPECT_EQ(m.notes.size(), 2u);
  const Tensor y = m.net.forward(random_batch({3, 1, 2, 2}, Layout::channels_first, 1));
  EXPECT_EQ(y.shape(), Shape({3, 2}));
}

TEST(ModelApi, BuiltinNameIsNotASpec) {
  try {
    Model::build("vgg-mini", {1, 28, 28});
    FAIL();
  } catch (const SpecError& e) {
    EXPECT_NE(e.message().find("built-in model name"), std::string::npos) << e.what();
  }
  try {
    parse_spec("\n  resnet-mini \n");
    FAIL();
  } catch (const SpecError& e) {
    EXPECT_EQ(e.position().line, 2);
    EXPECT_EQ(e.position().column, 3);
  }
}

TEST(ModelApi, SpecFileErrorsNameTheFile) {
  const std::string path = testing::TempDir() + "bnorm_model_test.spec";
  {
    std::ofstream out(path);
    out << "# a test net\nconv3x3(8) bn relu\nlinear(10)\n";
  }
  const std::string text = read_spec_file(path);
  try {
    Model::build(text, {1, 8, 8}, {}, path);
    FAIL();
  } catch (const SpecError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":3:1: 'linear' needs a flat input", 0), 0u) << e.what();
  }
  std::remove(path.c_str());
  EXPECT_THROW(read_spec_file(path), std::runtime_error);
}

}  // namespace
}  // namespace bnorm
