// The model-spec parser: every documented word and keyword is accepted and resolved to the
// right fields; every kind of mistake is rejected at the right line and column.
#include <gtest/gtest.h>

#include <string>

#include "bnorm/model/spec.hpp"

namespace bnorm {
namespace {

LayerSpec only(const std::string& text) {
  const SpecAst ast = parse_spec(text);
  EXPECT_EQ(ast.layers.size(), 1u) << text;
  return ast.layers.at(0);
}

TEST(SpecParse, BriefExample) {
  const SpecAst ast = parse_spec(
      "conv3x3(32) bn relu conv3x3(32) bn relu maxpool2 conv3x3(64) bn relu conv3x3(64) bn relu "
      "maxpool2 flatten linear(128) bn relu dropout(0.5) linear(10)");
  const std::vector<SpecKind> expected = {
      SpecKind::conv, SpecKind::bn, SpecKind::relu, SpecKind::conv, SpecKind::bn, SpecKind::relu,
      SpecKind::maxpool, SpecKind::conv, SpecKind::bn, SpecKind::relu, SpecKind::conv, SpecKind::bn,
      SpecKind::relu, SpecKind::maxpool, SpecKind::flatten, SpecKind::linear, SpecKind::bn,
      SpecKind::relu, SpecKind::dropout, SpecKind::linear};
  ASSERT_EQ(ast.layers.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(ast.layers[i].kind, expected[i]) << i;
  EXPECT_EQ(ast.layers[0].out, 32);
  EXPECT_EQ(ast.layers[0].kernel, 3);
  EXPECT_EQ(ast.layers[0].padding, 1);
  EXPECT_EQ(ast.layers[0].stride, 1);
  EXPECT_FALSE(ast.layers[0].bias.has_value());
  EXPECT_EQ(ast.layers[6].kernel, 2);
  EXPECT_EQ(ast.layers[6].stride, 0);  // = kernel
  EXPECT_EQ(ast.layers[18].p, 0.5);
  EXPECT_EQ(ast.layers[19].out, 10);
  EXPECT_EQ(ast.layers[19].position.column, 140);
}

TEST(SpecParse, ConvForms) {
  LayerSpec c = only("conv(64, k=3, s=2, p=1, bias=false)");
  EXPECT_EQ(c.kind, SpecKind::conv);
  EXPECT_EQ(c.out, 64);
  EXPECT_EQ(c.kernel, 3);
  EXPECT_EQ(c.stride, 2);
  EXPECT_EQ(c.padding, 1);
  EXPECT_EQ(c.bias, false);
  c = only("conv(16, 5, 2, 1)");  // positional: out, k, s, p
  EXPECT_EQ(c.kernel, 5);
  EXPECT_EQ(c.stride, 2);
  EXPECT_EQ(c.padding, 1);
  c = only("conv(8, kernel=5, stride=1, padding=same, groups=2, dilation=1, bias=true)");
  EXPECT_EQ(c.padding, 2);
  EXPECT_EQ(c.groups, 2);
  EXPECT_EQ(c.bias, true);
  c = only("conv(8, k=3)");  // PyTorch's default padding 0
  EXPECT_EQ(c.padding, 0);
  c = only("conv1x1(64, s=2)");
  EXPECT_EQ(c.kernel, 1);
  EXPECT_EQ(c.padding, 0);
  EXPECT_EQ(c.stride, 2);
  c = only("conv5x5(8)");
  EXPECT_EQ(c.kernel, 5);
  EXPECT_EQ(c.padding, 2);
  c = only("conv3x3(8, d=2)");  // "same" padding grows with the dilation
  EXPECT_EQ(c.padding, 2);
  c = only("conv3x3(8, 2)");  // positional: out, s
  EXPECT_EQ(c.stride, 2);
  c = only("conv3x3(8, p=0, g=4)");
  EXPECT_EQ(c.padding, 0);
  EXPECT_EQ(c.groups, 4);
  EXPECT_EQ(c.word, "conv3x3");
}

TEST(SpecParse, PoolsLinearActivationsDropoutFlatten) {
  LayerSpec l = only("maxpool(3, 2, 1)");
  EXPECT_EQ(l.kind, SpecKind::maxpool);
  EXPECT_EQ(l.kernel, 3);
  EXPECT_EQ(l.stride, 2);
  EXPECT_EQ(l.padding, 1);
  l = only("maxpool(k=3, s=2, p=1)");
  EXPECT_EQ(l.kernel, 3);
  EXPECT_EQ(l.stride, 2);
  l = only("maxpool(2)");
  EXPECT_EQ(l.stride, 0);
  l = only("avgpool(3, 2)");
  EXPECT_EQ(l.kind, SpecKind::avgpool);
  EXPECT_EQ(l.kernel, 3);
  EXPECT_EQ(l.stride, 2);
  l = only("avgpool4(s=2)");
  EXPECT_EQ(l.kernel, 4);
  EXPECT_EQ(l.stride, 2);
  EXPECT_EQ(only("gap").kind, SpecKind::gap);
  l = only("linear(10, bias=true)");
  EXPECT_EQ(l.kind, SpecKind::linear);
  EXPECT_EQ(l.out, 10);
  EXPECT_EQ(l.bias, true);
  EXPECT_EQ(only("linear(out=7)").out, 7);
  EXPECT_EQ(only("relu").kind, SpecKind::relu);
  EXPECT_EQ(only("relu()").kind, SpecKind::relu);
  EXPECT_EQ(only("sigmoid").kind, SpecKind::sigmoid);
  EXPECT_EQ(only("tanh").kind, SpecKind::tanh);
  EXPECT_EQ(only("flatten").kind, SpecKind::flatten);
  EXPECT_FALSE(only("dropout").p.has_value());
  EXPECT_EQ(only("dropout(0.25)").p, 0.25);
  EXPECT_EQ(only("dropout(p=.1)").p, 0.1);
  EXPECT_EQ(only("dropout(0)").p, 0.0);
}

TEST(SpecParse, BatchNormOptions) {
  LayerSpec b = only("bn");
  EXPECT_EQ(b.kind, SpecKind::bn);
  EXPECT_EQ(b.bn_rank, SpecBnRank::any);
  EXPECT_FALSE(b.eps.has_value());
  EXPECT_FALSE(b.momentum.has_value());
  b = only("bn(eps=1e-3, momentum=0.01)");
  EXPECT_DOUBLE_EQ(*b.eps, 1e-3);
  ASSERT_TRUE(b.momentum.has_value());
  EXPECT_DOUBLE_EQ(**b.momentum, 0.01);
  b = only("bn(momentum=none)");
  ASSERT_TRUE(b.momentum.has_value());
  EXPECT_FALSE(b.momentum->has_value());  // cumulative average
  b = only("bn(momentum=1, eps=0, affine=false)");
  EXPECT_DOUBLE_EQ(**b.momentum, 1.0);
  EXPECT_EQ(*b.eps, 0.0);
  EXPECT_FALSE(b.affine);
  EXPECT_EQ(only("bn1d").bn_rank, SpecBnRank::bn1d);
  EXPECT_EQ(only("bn2d(eps=2.5E-4)").bn_rank, SpecBnRank::bn2d);
}

TEST(SpecParse, ResidualBodyAndShortcut) {
  SpecAst ast = parse_spec("res(conv3x3(64) bn relu conv3x3(64) bn) relu");
  ASSERT_EQ(ast.layers.size(), 2u);
  const LayerSpec& r = ast.layers[0];
  EXPECT_EQ(r.kind, SpecKind::residual);
  EXPECT_EQ(r.body.size(), 5u);
  EXPECT_FALSE(r.has_shortcut);
  EXPECT_TRUE(r.shortcut.empty());
  EXPECT_EQ(r.body[3].position.column, 25);

  ast = parse_spec("res(conv3x3(64, s=2) bn | conv1x1(64, s=2) bn)");
  EXPECT_TRUE(ast.layers[0].has_shortcut);
  ASSERT_EQ(ast.layers[0].shortcut.size(), 2u);
  EXPECT_EQ(ast.layers[0].shortcut[0].kernel, 1);
  EXPECT_EQ(ast.layers[0].shortcut[0].stride, 2);

  ast = parse_spec("res(relu |)");  // explicit identity
  EXPECT_TRUE(ast.layers[0].has_shortcut);
  EXPECT_TRUE(ast.layers[0].shortcut.empty());

  ast = parse_spec("res(res(relu) tanh)");  // nesting
  EXPECT_EQ(ast.layers[0].body[0].kind, SpecKind::residual);
}

TEST(SpecParse, CommentsAndNewlines) {
  const SpecAst ast = parse_spec(
      "# a small net\n"
      "conv3x3(8)   # stem\n"
      "  bn(eps=1e-3,\n"
      "     momentum=0.2) relu\r\n"
      "\tflatten linear(10)  # head\n",
      "net.spec");
  ASSERT_EQ(ast.layers.size(), 5u);
  EXPECT_EQ(ast.source, "net.spec");
  EXPECT_EQ(ast.layers[0].position.line, 2);
  EXPECT_EQ(ast.layers[0].position.column, 1);
  EXPECT_EQ(ast.layers[1].position.line, 3);
  EXPECT_EQ(ast.layers[1].position.column, 3);
  EXPECT_DOUBLE_EQ(**ast.layers[1].momentum, 0.2);
  EXPECT_EQ(ast.layers[2].position.line, 4);
  EXPECT_EQ(ast.layers[2].position.column, 20);
  EXPECT_EQ(ast.layers[4].position.line, 5);
  EXPECT_EQ(ast.layers[4].position.column, 10);
}

struct BadSpec {
  const char* text;
  int line, column;
  const char* message_part;
};

class SpecParseError : public testing::TestWithParam<BadSpec> {};

TEST_P(SpecParseError, RejectedAtPosition) {
  const BadSpec& bad = GetParam();
  try {
    parse_spec(bad.text);
    FAIL() << "accepted: " << bad.text;
  } catch (const SpecError& e) {
    EXPECT_EQ(e.position().line, bad.line) << e.what();
    EXPECT_EQ(e.position().column, bad.column) << e.what();
    EXPECT_NE(e.message().find(bad.message_part), std::string::npos) << e.what();
    const std::string prefix = "spec:" + std::to_string(bad.line) + ":" + std::to_string(bad.column) + ": ";
    EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Mistakes, SpecParseError,
    testing::Values(
        BadSpec{"conv3x3(32) cnv3x3(32)", 1, 13, "unknown layer 'cnv3x3' (did you mean 'conv3x3'?); expected one of conv, conv3x3"},
        BadSpec{"Relu", 1, 1, "unknown layer 'Relu'"},
        BadSpec{"conv3x3(0)", 1, 9, "'out' must be >= 1, got 0"},
        BadSpec{"relu linear(-5)", 1, 13, "'out' must be >= 1, got -5"},
        BadSpec{"conv(8, k=0)", 1, 11, "'k' must be >= 1"},
        BadSpec{"conv(8, k=3, s=0)", 1, 16, "'s' must be >= 1"},
        BadSpec{"conv(8, k=3, p=-1)", 1, 16, "'p' must be >= 0"},
        BadSpec{"conv(8, k=3, p=valid)", 1, 16, "non-negative integer or 'same'"},
        BadSpec{"conv3x3(32.5)", 1, 9, "'out' must be an integer, got '32.5'"},
        BadSpec{"conv(64, k=3, q=1)", 1, 15, "unknown keyword 'q' for 'conv'; expected one of out, k (kernel)"},
        BadSpec{"bn(epsilon=1e-3)", 1, 4, "unknown keyword 'epsilon' for 'bn'; expected one of eps, momentum, affine"},
        BadSpec{"relu(inplace=true)", 1, 6, "it takes no arguments"},
        BadSpec{"conv3x3(32 relu", 1, 12, "expected ',' or ')'"},
        BadSpec{"conv3x3(32", 1, 11, "missing ')' to close the '(' of 'conv3x3' at column 8"},
        BadSpec{"bn relu)", 1, 8, "unbalanced ')'"},
        BadSpec{"(relu)", 1, 1, "expected a layer word"},
        BadSpec{"relu 32", 1, 6, "unexpected number '32'; expected a layer word"},
        BadSpec{"dropout(1.5)", 1, 9, "dropout probability must be in [0, 1), got 1.5"},
        BadSpec{"dropout(1)", 1, 9, "[0, 1)"},
        BadSpec{"dropout(1e)", 1, 9, "malformed number '1e'"},
        BadSpec{"conv3x3(3x2)", 1, 9, "malformed number '3x2'"},
        BadSpec{"bn(momentum=2)", 1, 13, "'momentum' must be in [0, 1] or none, got 2"},
        BadSpec{"bn(momentum=fast)", 1, 13, "or none, got 'fast'"},
        BadSpec{"bn(eps=-1e-5)", 1, 8, "'eps' must be >= 0"},
        BadSpec{"bn(affine=yes)", 1, 11, "'affine' must be true or false"},
        BadSpec{"linear(10, bias=1)", 1, 17, "'bias' must be true or false"},
        BadSpec{"conv(64)", 1, 1, "'conv' needs a kernel size"},
        BadSpec{"relu conv3x3", 1, 6, "'conv3x3' needs its number of output channels"},
        BadSpec{"linear", 1, 1, "'linear' needs its number of output features"},
        BadSpec{"maxpool", 1, 1, "'maxpool' needs a kernel size"},
        BadSpec{"conv4x4(8)", 1, 1, "odd square kernel"},
        BadSpec{"conv3x5(8)", 1, 1, "odd square kernel"},
        BadSpec{"conv(8, k=4, p=same)", 1, 1, "p=same needs an odd kernel"},
        BadSpec{"maxpool0", 1, 1, "pool size must be >= 1"},
        BadSpec{"maxpool2(2)", 1, 10, "too many positional arguments for 'maxpool2'; it takes none"},
        BadSpec{"linear(10, 20)", 1, 12, "it takes at most 1 (out)"},
        BadSpec{"conv(64, k=3, 1)", 1, 15, "positional argument after a keyword argument"},
        BadSpec{"conv(64, k=3, kernel=5)", 1, 15, "argument 'k' of 'conv' given twice"},
        BadSpec{"linear(10,)", 1, 11, "expected an argument for 'linear', found ')'"},
        BadSpec{"bn(eps=)", 1, 8, "expected a value for 'eps'"},
        BadSpec{"relu $", 1, 6, "unexpected character '$'"},
        BadSpec{"res(relu", 1, 9, "missing ')' to close the '(' of 'res' at line 1, column 4"},
        BadSpec{"res relu", 1, 5, "expected '(' after 'res'"},
        BadSpec{"res()", 1, 5, "empty residual body"},
        BadSpec{"res(| relu)", 1, 5, "empty residual body"},
        BadSpec{"res(relu | relu | relu)", 1, 17, "a second '|' is not allowed"},
        BadSpec{"relu | relu", 1, 6, "'|' is only allowed inside res(...)"},
        BadSpec{"", 1, 1, "empty spec"},
        BadSpec{"  # only a comment\n", 2, 1, "empty spec"},
        BadSpec{"conv3x3(8) bn relu\n  flatten lnear(10)", 2, 11, "unknown layer 'lnear' (did you mean 'linear'?)"},
        BadSpec{"res(conv3x3(8)\n    bn relu\n", 3, 1, "missing ')' to close the '(' of 'res' at line 1, column 4"},
        BadSpec{"linear(99999999999999999999)", 1, 8, "out of range"}));

TEST(SpecParse, ErrorShowsTheLineWithACaret) {
  try {
    parse_spec("conv3x3(8) bn\nrelu cnv3x3(32) flatten", "net.spec");
    FAIL();
  } catch (const SpecError& e) {
    EXPECT_EQ(std::string(e.what()),
              "net.spec:2:6: unknown layer 'cnv3x3' (did you mean 'conv3x3'?); expected one of conv, conv3x3, "
              "conv1x1, conv5x5, linear, bn, bn1d, bn2d, maxpool, maxpool2, avgpool, avgpool2, gap, relu, "
              "sigmoid, tanh, dropout, flatten, res\n"
              "  relu cnv3x3(32) flatten\n"
              "       ^");
  }
}

TEST(SpecParse, SpecErrorIsAnInvalidArgument) {
  EXPECT_THROW(parse_spec("nope"), std::invalid_argument);
}

}  // namespace
}  // namespace bnorm
