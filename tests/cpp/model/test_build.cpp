// Building networks from specs: layer sequence, shapes, hand-computed parameter counts, the
// bias rule, BN defaults and overrides, residual shortcuts, and shape errors at the position
// of the word that caused them.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "bnorm/layers/batchnorm.hpp"
#include "bnorm/layers/conv2d.hpp"
#include "bnorm/layers/linear.hpp"
#include "bnorm/layers/residual.hpp"
#include "bnorm/model/build.hpp"
#include "bnorm/model/builtin.hpp"

namespace bnorm {
namespace {

BuiltNetwork build(const std::string& spec, const Shape& input, BuildOptions options = {}) {
  options.input_shape = input;
  return build_network(parse_spec(spec), options);
}

std::vector<std::string> kinds(const Sequential& net) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < net.size(); ++i) out.push_back(net.at(i).kind());
  return out;
}

const LayerNote& note(const BuiltNetwork& b, const std::string& name) {
  for (const LayerNote& n : b.notes)
    if (n.name == name) return n;
  throw std::runtime_error("no note " + name);
}

TEST(SpecBuild, VggMiniWithBnLayersShapesAndCounts) {
  BuiltNetwork b = build(builtin_spec("vgg-mini"), {1, 28, 28});
  EXPECT_EQ(kinds(b.net), (std::vector<std::string>{"conv", "bn", "relu", "conv", "bn", "relu", "maxpool", "conv",
                                                    "bn", "relu", "conv", "bn", "relu", "maxpool", "flatten",
                                                    "linear", "bn", "relu", "linear"}));
  EXPECT_EQ(b.output_shape, Shape({10}));
  // Hand count, no biases before bn: convs 1*32*9 + 32*32*9 + 32*64*9 + 64*64*9 = 288 + 9216 +
  // 18432 + 36864; linear 64*7*7*128 = 401408; last linear 128*10 + 10 = 1290; bn gamma+beta
  // 2*(32+32+64+64+128) = 640.
  EXPECT_EQ(b.net.parameter_count(), 288 + 9216 + 18432 + 36864 + 401408 + 1290 + 640);
  EXPECT_EQ(b.net.parameter_count(), 468138);
  EXPECT_EQ(b.net.at(0).parameter_count(), 288);
  EXPECT_EQ(b.net.at(15).parameter_count(), 401408);
  EXPECT_EQ(b.net.at(18).parameter_count(), 1290);
  // Shapes along the way.
  Shape s{1, 1, 28, 28};
  const std::vector<Shape> expected = {{1, 32, 28, 28}, {1, 32, 28, 28}, {1, 32, 28, 28}, {1, 32, 28, 28},
                                       {1, 32, 28, 28}, {1, 32, 28, 28}, {1, 32, 14, 14}, {1, 64, 14, 14},
                                       {1, 64, 14, 14}, {1, 64, 14, 14}, {1, 64, 14, 14}, {1, 64, 14, 14},
                                       {1, 64, 14, 14}, {1, 64, 7, 7},   {1, 3136},       {1, 128},
                                       {1, 128},        {1, 128},        {1, 10}};
  for (std::size_t i = 0; i < b.net.size(); ++i) {
    s = b.net.at(i).output_shape(s);
    EXPECT_EQ(s, expected[i]) << i;
  }
}

TEST(SpecBuild, VggMiniWithoutBnKeepsBiases) {
  BuiltNetwork b = build(builtin_spec("vgg-mini", {.bn = false}), {1, 28, 28});
  EXPECT_EQ(b.net.size(), 14u);
  // Each conv/linear keeps its bias: 288+32, 9216+32, 18432+64, 36864+64, 401408+128, 1280+10.
  EXPECT_EQ(b.net.parameter_count(), 320 + 9248 + 18496 + 36928 + 401536 + 1290);
  EXPECT_EQ(b.net.parameter_count(), 467818);
  for (const LayerNote& n : b.notes) EXPECT_FALSE(n.bias_dropped) << n.name;
}

TEST(SpecBuild, BnPositionOrdersTheLayers) {
  BuiltNetwork before = build(builtin_spec("mlp-paper"), {1, 28, 28});
  BuiltNetwork after = build(builtin_spec("mlp-paper", {.bn_position = BnPosition::after_activation}), {1, 28, 28});
  EXPECT_EQ(kinds(before.net), (std::vector<std::string>{"flatten", "linear", "bn", "sigmoid", "linear", "bn", "sigmoid",
                                                         "linear", "bn", "sigmoid", "linear"}));
  EXPECT_EQ(kinds(after.net), (std::vector<std::string>{"flatten", "linear", "sigmoid", "bn", "linear", "sigmoid", "bn",
                                                        "linear", "sigmoid", "bn", "linear"}));
  // 784*100 + 2*100*100 + 100*10+10 + 3*200 (bn) before; after bn the linears keep their biases.
  EXPECT_EQ(before.net.parameter_count(), 78400 + 20000 + 1010 + 600);
  EXPECT_EQ(after.net.parameter_count(), 78500 + 20200 + 1010 + 600);
}

TEST(SpecBuild, BiasRule) {
  BuiltNetwork b = build("conv3x3(4) bn relu conv3x3(4, bias=true) bn conv3x3(4) relu bn conv3x3(4, bias=false) "
                         "flatten linear(8) bn linear(3)",
                         {2, 5, 5});
  auto& c1 = dynamic_cast<Conv2d&>(b.net.at(0));
  auto& c2 = dynamic_cast<Conv2d&>(b.net.at(3));
  auto& c3 = dynamic_cast<Conv2d&>(b.net.at(5));
  auto& c4 = dynamic_cast<Conv2d&>(b.net.at(8));
  auto& l1 = dynamic_cast<Linear&>(b.net.at(10));
  auto& l2 = dynamic_cast<Linear&>(b.net.at(12));
  EXPECT_FALSE(c1.options().bias);  // bn follows
  EXPECT_TRUE(c2.options().bias);   // bias=true wins
  EXPECT_TRUE(c3.options().bias);   // relu follows
  EXPECT_FALSE(c4.options().bias);  // asked for, not dropped
  EXPECT_FALSE(l1.options().bias);
  EXPECT_TRUE(l2.options().bias);
  ASSERT_EQ(b.notes.size(), 6u);
  EXPECT_TRUE(note(b, "conv1").bias_dropped);
  EXPECT_FALSE(note(b, "conv2").bias_dropped);
  EXPECT_FALSE(note(b, "conv3").bias_dropped);
  EXPECT_FALSE(note(b, "conv4").bias_dropped);
  EXPECT_TRUE(note(b, "linear1").bias_dropped);
  EXPECT_FALSE(note(b, "linear2").bias_dropped);
  EXPECT_EQ(note(b, "linear1").position.column, 95);
  // The activation each weight layer meets (for initialization).
  EXPECT_EQ(note(b, "conv1").activation, Activation::relu);
  EXPECT_EQ(note(b, "conv2").activation, std::nullopt);  // conv3 comes first
  EXPECT_EQ(note(b, "conv3").activation, Activation::relu);
  EXPECT_EQ(note(b, "linear2").activation, std::nullopt);
}

TEST(SpecBuild, BnDefaultsAndOverrides) {
  BuiltNetwork b = build("bn bn(eps=1e-4) bn(momentum=none) bn(momentum=0.3, affine=false) flatten bn bn1d",
                         {3, 4, 4}, {.bn_eps = 1e-3, .bn_momentum = 0.01});
  auto bn = [&](std::size_t i) -> BatchNorm& { return dynamic_cast<BatchNorm&>(b.net.at(i)); };
  EXPECT_DOUBLE_EQ(bn(0).options().eps, 1e-3);
  EXPECT_DOUBLE_EQ(*bn(0).options().momentum, 0.01);
  EXPECT_DOUBLE_EQ(bn(1).options().eps, 1e-4);
  EXPECT_DOUBLE_EQ(*bn(1).options().momentum, 0.01);
  EXPECT_FALSE(bn(2).options().momentum.has_value());
  EXPECT_DOUBLE_EQ(*bn(3).options().momentum, 0.3);
  EXPECT_FALSE(bn(3).options().affine);
  EXPECT_EQ(bn(0).options().num_features, 3);
  EXPECT_EQ(bn(0).describe().rfind("BatchNorm2d", 0), 0u);
  EXPECT_EQ(bn(5).options().num_features, 48);
  EXPECT_EQ(bn(5).describe().rfind("BatchNorm1d", 0), 0u);
  EXPECT_EQ(bn(6).describe().rfind("BatchNorm1d", 0), 0u);
}

TEST(SpecBuild, ChannelsLastLayoutReachesTheLayers) {
  BuiltNetwork b = build("conv3x3(4) bn relu maxpool2 flatten linear(2)", {3, 4, 4}, {.layout = Layout::channels_last});
  EXPECT_EQ(dynamic_cast<Conv2d&>(b.net.at(0)).options().layout, Layout::channels_last);
  EXPECT_EQ(dynamic_cast<BatchNorm&>(b.net.at(1)).options().layout, Layout::channels_last);
}

TEST(SpecBuild, DropoutDefaultProbabilityAndDistinctSeeds) {
  BuiltNetwork b = build("dropout dropout(0.25) dropout", {6}, {.dropout_p = 0.3, .seed = 5});
  EXPECT_NE(b.net.at(0).describe().find("p=0.3,"), std::string::npos) << b.net.at(0).describe();
  EXPECT_NE(b.net.at(1).describe().find("p=0.25,"), std::string::npos) << b.net.at(1).describe();
  EXPECT_NE(b.net.at(0).describe(), b.net.at(2).describe());  // different seeds
}

TEST(SpecBuild, ResidualIdentityAndProjection) {
  BuiltNetwork b = build("conv3x3(8) res(conv3x3(8) bn relu conv3x3(8) bn) relu "
                         "res(conv3x3(16, s=2) bn relu conv3x3(16) bn) relu gap linear(3)",
                         {3, 8, 8});
  EXPECT_EQ(b.output_shape, Shape({3}));
  auto& r1 = dynamic_cast<Residual&>(b.net.at(1));
  auto& r2 = dynamic_cast<Residual&>(b.net.at(3));
  EXPECT_EQ(r1.shortcut().size(), 0u);
  ASSERT_EQ(r2.shortcut().size(), 2u);
  auto& proj = dynamic_cast<Conv2d&>(r2.shortcut().at(0));
  EXPECT_EQ(proj.options().kernel_size, 1);
  EXPECT_EQ(proj.options().stride, 2);
  EXPECT_EQ(proj.options().in_channels, 8);
  EXPECT_EQ(proj.options().out_channels, 16);
  EXPECT_FALSE(proj.options().bias);
  EXPECT_EQ(r2.shortcut().at(1).kind(), "bn");
  EXPECT_EQ(r2.output_shape({1, 8, 8, 8}), Shape({1, 16, 4, 4}));
  // 3 + 2 + 2 + 1 conv/linear notes + 1 projection; every note names a real weight.
  EXPECT_EQ(b.notes.size(), 7u);
  std::set<std::string> names;
  for (const ParameterRef& p : b.net.parameters()) names.insert(p.name);
  for (const LayerNote& n : b.notes) EXPECT_TRUE(names.count(n.name + ".weight")) << n.name;
  const auto projection = std::find_if(b.notes.begin(), b.notes.end(), [](const LayerNote& n) { return n.projection; });
  ASSERT_NE(projection, b.notes.end());
  EXPECT_TRUE(projection->bias_dropped);
  EXPECT_NE(projection->name.find(".shortcut."), std::string::npos);
  // Inside a body, the last conv's activation is the relu after the block.
  EXPECT_EQ(b.notes[2].activation, Activation::relu);
}

TEST(SpecBuild, ResidualWithoutBnProjectsWithoutBn) {
  BuiltNetwork b = build("res(conv3x3(4, s=2) relu conv3x3(4))", {2, 7, 7});
  auto& r = dynamic_cast<Residual&>(b.net.at(0));
  ASSERT_EQ(r.shortcut().size(), 1u);
  EXPECT_TRUE(dynamic_cast<Conv2d&>(r.shortcut().at(0)).options().bias);
  EXPECT_EQ(b.output_shape, Shape({4, 4, 4}));
}

TEST(SpecBuild, ResidualExplicitShortcutAndFlatProjection) {
  BuiltNetwork b = build("res(conv3x3(4, s=2) | avgpool2 conv1x1(4))", {4, 8, 8});
  auto& r = dynamic_cast<Residual&>(b.net.at(0));
  EXPECT_EQ(r.shortcut().size(), 2u);
  EXPECT_EQ(b.output_shape, Shape({4, 4, 4}));
  BuiltNetwork flat = build("flatten res(linear(8) relu linear(5))", {2, 2, 3});
  auto& rf = dynamic_cast<Residual&>(flat.net.at(1));
  ASSERT_EQ(rf.shortcut().size(), 1u);
  EXPECT_EQ(rf.shortcut().at(0).kind(), "linear");
  EXPECT_EQ(flat.output_shape, Shape({5}));
}

struct BadBuild {
  const char* spec;
  std::vector<std::int64_t> input;
  int line, column;
  const char* message_part;
};

class SpecBuildError : public testing::TestWithParam<BadBuild> {};

TEST_P(SpecBuildError, RejectedAtPosition) {
  const BadBuild& bad = GetParam();
  try {
    build(bad.spec, Shape(bad.input));
    FAIL() << "accepted: " << bad.spec;
  } catch (const SpecError& e) {
    EXPECT_EQ(e.position().line, bad.line) << e.what();
    EXPECT_EQ(e.position().column, bad.column) << e.what();
    EXPECT_NE(e.message().find(bad.message_part), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Mistakes, SpecBuildError,
    testing::Values(
        BadBuild{"conv3x3(8) bn relu linear(10)", {1, 28, 28}, 1, 20,
                 "'linear' needs a flat input (features) per example, got (8, 28, 28): add 'flatten'"},
        BadBuild{"flatten conv3x3(8)", {1, 28, 28}, 1, 9, "needs a (C, H, W) input per example, got (784)"},
        BadBuild{"flatten bn2d", {1, 4, 4}, 1, 9, "'bn2d' needs a (C, H, W) input per example, got (16) (rank 1)"},
        BadBuild{"relu bn1d", {1, 4, 4}, 1, 6, "'bn1d' needs a (features) or (C, L) input per example, got (1, 4, 4)"},
        BadBuild{"bn", {1, 2, 3, 4}, 1, 1, "got (1, 2, 3, 4) (rank 4)"},
        BadBuild{"gap gap", {3, 4, 4}, 1, 5, "'gap' needs a (C, H, W) input"},
        BadBuild{"maxpool(5)", {1, 4, 4}, 1, 1, "a window of 5 does not fit the input (1, 4, 4)"},
        BadBuild{"conv(8, k=7)", {1, 4, 4}, 1, 1, "a window of 7 does not fit"},
        BadBuild{"maxpool(2, p=2)", {1, 4, 4}, 1, 1, "at most half the kernel"},
        BadBuild{"conv(8, k=3, g=3)", {4, 5, 5}, 1, 1, "groups=3 must divide the input channels (4)"},
        BadBuild{"relu\nres(conv3x3(8, s=2) | relu)", {4, 8, 8}, 2, 1,
                 "the body maps (4, 8, 8) to (8, 4, 4) but the shortcut gives (4, 8, 8)"},
        BadBuild{"res(conv(8, k=3))", {4, 8, 8}, 1, 1, "no strided conv1x1 projection reproduces"},
        BadBuild{"res(flatten)", {4, 2, 2}, 1, 1, "an automatic projection exists only for"},
        BadBuild{"res(relu linear(3))", {4, 2, 2}, 1, 10, "add 'flatten'"}));

TEST(SpecBuild, BadInputShapeIsNotASpecError) {
  EXPECT_THROW(build("relu", Shape{1, 0, 3}), std::invalid_argument);
  try {
    build("relu", Shape{1, 0, 3});
  } catch (const SpecError&) {
    FAIL() << "a bad input shape is the caller's mistake, not the spec's";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("(1, 0, 3)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bnorm
