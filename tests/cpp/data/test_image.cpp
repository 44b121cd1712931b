// Single images for prediction: PNG (written here with libpng in every color type and depth)
// and PGM/PPM (P2, P3, P5, P6), with their corrupt variants.
#include <gtest/gtest.h>
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <fstream>

#include "bnorm/data/image.hpp"
#include "data_test_support.hpp"

namespace bnorm {
namespace {

using testing::Bytes;
using testing::expect_error;
using testing::TempDir;

struct PngSpec {
  int width = 0, height = 0;
  int color_type = PNG_COLOR_TYPE_GRAY;
  int bit_depth = 8;
  bool interlaced = false;
  std::vector<png_color> palette;  // for PNG_COLOR_TYPE_PALETTE
  Bytes rows;                      // height rows of packed samples, as PNG stores them
};

// Writes `spec` as a PNG file. Only valid images are written, so libpng's errors are failures.
bool write_png(const std::string& path, const PngSpec& spec) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) return false;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  const std::size_t row_bytes = spec.rows.size() / spec.height;
  std::vector<png_bytep> rows(spec.height);
  for (int y = 0; y < spec.height; ++y) rows[y] = const_cast<png_bytep>(spec.rows.data() + y * row_bytes);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    std::fclose(file);
    return false;
  }
  png_init_io(png, file);
  png_set_IHDR(png, info, spec.width, spec.height, spec.bit_depth, spec.color_type,
               spec.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!spec.palette.empty()) png_set_PLTE(png, info, spec.palette.data(), static_cast<int>(spec.palette.size()));
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  std::fclose(file);
  return true;
}

Bytes file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

float at(const Tensor& t, int c, int y, int x) { return t.data_f32()[(c * t.dim(2) + y) * t.dim(3) + x]; }

TEST(Png, Gray8AndGray16) {
  TempDir dir;
  ASSERT_TRUE(write_png(dir.file("g8.png"), {.width = 3, .height = 2, .rows = {0, 128, 255, 1, 2, 254}}));
  const Tensor g8 = read_png(dir.file("g8.png"));
  ASSERT_EQ(g8.shape(), (Shape{1, 1, 2, 3}));
  EXPECT_EQ(at(g8, 0, 0, 1), 128.0f / 255.0f);
  EXPECT_EQ(at(g8, 0, 1, 2), 254.0f / 255.0f);
  EXPECT_EQ(at(g8, 0, 0, 2), 1.0f);

  // 16 bits, big-endian samples: 0x0000, 0xFFFF, 0x8080, 0x03E8.
  ASSERT_TRUE(write_png(dir.file("g16.png"), {.width = 2, .height = 2, .bit_depth = 16,
                                              .rows = {0x00, 0x00, 0xFF, 0xFF, 0x80, 0x80, 0x03, 0xE8}}));
  const Tensor g16 = read_image(dir.file("g16.png"));
  EXPECT_EQ(at(g16, 0, 0, 0), 0.0f);
  EXPECT_EQ(at(g16, 0, 0, 1), 1.0f);
  EXPECT_EQ(at(g16, 0, 1, 0), 32896.0f / 65535.0f);
  EXPECT_EQ(at(g16, 0, 1, 1), 1000.0f / 65535.0f);
}

TEST(Png, LowBitDepthGrayAndGrayAlpha) {
  TempDir dir;
  // 1-bit gray, 10 pixels in 2 bytes per row: 1011001110 -> bytes 10110011 10000000.
  ASSERT_TRUE(write_png(dir.file("g1.png"), {.width = 10, .height = 1, .bit_depth = 1, .rows = {0xB3, 0x80}}));
  const Tensor g1 = read_png(dir.file("g1.png"));
  ASSERT_EQ(g1.shape(), (Shape{1, 1, 1, 10}));
  const float expected[10] = {1, 0, 1, 1, 0, 0, 1, 1, 1, 0};
  for (int x = 0; x < 10; ++x) EXPECT_EQ(at(g1, 0, 0, x), expected[x]) << x;

  // Gray + alpha: the alpha is dropped, the gray kept as stored.
  ASSERT_TRUE(write_png(dir.file("ga.png"), {.width = 2, .height = 1, .color_type = PNG_COLOR_TYPE_GRAY_ALPHA,
                                             .rows = {51, 0, 204, 255}}));
  const Tensor ga = read_png(dir.file("ga.png"));
  ASSERT_EQ(ga.shape(), (Shape{1, 1, 1, 2}));
  EXPECT_EQ(at(ga, 0, 0, 0), 51.0f / 255.0f);
  EXPECT_EQ(at(ga, 0, 0, 1), 204.0f / 255.0f);
}

TEST(Png, RgbRgbaPaletteAndInterlacedAreChannelPlanar) {
  TempDir dir;
  const Bytes rgb = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};  // 2 x 2 pixels
  ASSERT_TRUE(write_png(dir.file("rgb.png"), {.width = 2, .height = 2, .color_type = PNG_COLOR_TYPE_RGB, .rows = rgb}));
  Bytes rgba;
  for (std::size_t p = 0; p < 4; ++p) rgba.insert(rgba.end(), {rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2], static_cast<std::uint8_t>(p * 60)});
  ASSERT_TRUE(write_png(dir.file("rgba.png"), {.width = 2, .height = 2, .color_type = PNG_COLOR_TYPE_RGB_ALPHA, .rows = rgba}));
  ASSERT_TRUE(write_png(dir.file("pal.png"), {.width = 2, .height = 2, .color_type = PNG_COLOR_TYPE_PALETTE,
                                              .palette = {{10, 20, 30}, {40, 50, 60}, {70, 80, 90}, {100, 110, 120}},
                                              .rows = {0, 1, 2, 3}}));
  Bytes rgb16;  // the same colors in 16 bits (v * 257 is v / 255 exactly)
  for (std::uint8_t v : rgb) rgb16.insert(rgb16.end(), {v, v});
  ASSERT_TRUE(write_png(dir.file("rgb16i.png"), {.width = 2, .height = 2, .color_type = PNG_COLOR_TYPE_RGB,
                                                 .bit_depth = 16, .interlaced = true, .rows = rgb16}));
  for (const char* name : {"rgb.png", "rgba.png", "pal.png", "rgb16i.png"}) {
    SCOPED_TRACE(name);
    const Tensor t = read_image(dir.file(name));
    ASSERT_EQ(t.shape(), (Shape{1, 3, 2, 2}));
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 2; ++x)
        for (int c = 0; c < 3; ++c)
          EXPECT_FLOAT_EQ(at(t, c, y, x), rgb[(y * 2 + x) * 3 + c] / 255.0f) << y << x << c;
  }
}

TEST(Png, ChannelConversion) {
  TempDir dir;
  ASSERT_TRUE(write_png(dir.file("rgb.png"), {.width = 1, .height = 1, .color_type = PNG_COLOR_TYPE_RGB, .rows = {255, 0, 51}}));
  const Tensor gray = read_png(dir.file("rgb.png"), {.channels = 1});
  ASSERT_EQ(gray.shape(), (Shape{1, 1, 1, 1}));
  EXPECT_FLOAT_EQ(gray.data_f32()[0], 0.299f + 0.114f * 0.2f);
  ASSERT_TRUE(write_png(dir.file("g.png"), {.width = 1, .height = 1, .rows = {102}}));
  const Tensor rgb = read_png(dir.file("g.png"), {.channels = 3});
  ASSERT_EQ(rgb.shape(), (Shape{1, 3, 1, 1}));
  for (int c = 0; c < 3; ++c) EXPECT_EQ(rgb.data_f32()[c], 0.4f);
  expect_error<std::invalid_argument>([&] { read_png(dir.file("g.png"), {.channels = 2}); }, {"must be 0 (as stored), 1 or 3, got 2"});
}

TEST(Png, CorruptFiles) {
  TempDir dir;
  Bytes pixels(64 * 64);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 7);
  ASSERT_TRUE(write_png(dir.file("ok.png"), {.width = 64, .height = 64, .rows = pixels}));
  const Bytes good = file_bytes(dir.file("ok.png"));
  ASSERT_NO_THROW(read_png(dir.file("ok.png")));

  testing::write_bytes(dir.file("cut.png"), Bytes(good.begin(), good.begin() + good.size() / 2));
  expect_error([&] { read_png(dir.file("cut.png")); }, {dir.file("cut.png") + ": corrupt PNG"});

  Bytes flipped = good;
  flipped[good.size() / 2] ^= 0xFF;  // inside IDAT: its CRC no longer matches
  testing::write_bytes(dir.file("crc.png"), flipped);
  expect_error([&] { read_png(dir.file("crc.png")); }, {dir.file("crc.png") + ": corrupt PNG"});

  Bytes header_only(good.begin(), good.begin() + 20);  // signature + part of IHDR
  testing::write_bytes(dir.file("header.png"), header_only);
  expect_error([&] { read_png(dir.file("header.png")); }, {dir.file("header.png") + ": corrupt PNG"});

  Bytes signature = good;
  signature[1] = 'X';
  testing::write_bytes(dir.file("sig.png"), signature);
  expect_error([&] { read_png(dir.file("sig.png")); }, {dir.file("sig.png") + ": not a PNG file"});
  expect_error([&] { read_image(dir.file("sig.png")); }, {dir.file("sig.png") + ": not an image this program reads"});
  testing::write_bytes(dir.file("empty.png"), {});
  expect_error([&] { read_image(dir.file("empty.png")); }, {dir.file("empty.png") + ": not an image"});
  expect_error([&] { read_image(dir.file("missing.png")); }, {dir.file("missing.png") + ": cannot open"});
}

Bytes text_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

TEST(Pnm, BinaryAndTextGrayAndColor) {
  TempDir dir;
  Bytes p5 = text_bytes("P5\n# made by hand\n3 2\n255\n");
  p5.insert(p5.end(), {0, 128, 255, 7, 8, 9});
  testing::write_bytes(dir.file("a.pgm"), p5);
  const Tensor a = read_image(dir.file("a.pgm"));
  ASSERT_EQ(a.shape(), (Shape{1, 1, 2, 3}));
  EXPECT_EQ(at(a, 0, 0, 1), 128.0f / 255.0f);
  EXPECT_EQ(at(a, 0, 1, 2), 9.0f / 255.0f);

  Bytes p5_16 = text_bytes("P5 2 1 65535 ");
  p5_16.insert(p5_16.end(), {0x80, 0x80, 0xFF, 0xFF});
  testing::write_bytes(dir.file("b.pgm"), p5_16);
  const Tensor b = read_pnm(dir.file("b.pgm"));
  EXPECT_FLOAT_EQ(at(b, 0, 0, 0), 32896.0f / 65535.0f);
  EXPECT_EQ(at(b, 0, 0, 1), 1.0f);

  testing::write_bytes(dir.file("c.pgm"), text_bytes("P2\n2 2\n15 # max\n0 15\n# row two\n 5 10\n"));
  const Tensor c = read_pnm(dir.file("c.pgm"));
  EXPECT_FLOAT_EQ(at(c, 0, 0, 1), 1.0f);
  EXPECT_FLOAT_EQ(at(c, 0, 1, 0), 5.0f / 15.0f);
  EXPECT_FLOAT_EQ(at(c, 0, 1, 1), 10.0f / 15.0f);

  Bytes p6 = text_bytes("P6 2 1 255\n");
  p6.insert(p6.end(), {1, 2, 3, 4, 5, 6});
  testing::write_bytes(dir.file("d.ppm"), p6);
  testing::write_bytes(dir.file("e.ppm"), text_bytes("P3 2 1 255 1 2 3 4 5 6\n"));
  for (const char* name : {"d.ppm", "e.ppm"}) {
    const Tensor t = read_image(dir.file(name));
    ASSERT_EQ(t.shape(), (Shape{1, 3, 1, 2})) << name;
    EXPECT_EQ(at(t, 0, 0, 0), 1.0f / 255.0f);  // R of pixel 0
    EXPECT_EQ(at(t, 2, 0, 0), 3.0f / 255.0f);  // B of pixel 0
    EXPECT_EQ(at(t, 0, 0, 1), 4.0f / 255.0f);  // R of pixel 1
  }
  const Tensor gray = read_image(dir.file("d.ppm"), {.channels = 1});
  EXPECT_FLOAT_EQ(gray.data_f32()[0], (0.299f * 1 + 0.587f * 2 + 0.114f * 3) / 255.0f);
}

TEST(Pnm, CorruptFiles) {
  TempDir dir;
  struct Case { const char* name; Bytes bytes; const char* message; };
  auto with_raster = [](const std::string& header, Bytes raster) {
    Bytes b = text_bytes(header);
    b.insert(b.end(), raster.begin(), raster.end());
    return b;
  };
  const std::vector<Case> cases = {
      {"truncated", with_raster("P5 3 2 255\n", {1, 2, 3, 4}), "expected 6 bytes of samples after the header (3 x 2 x 1 x 1), found 4"},
      {"trailing", with_raster("P5 1 1 255\n", {1, 2}), "expected 1 bytes of samples after the header (1 x 1 x 1 x 1), found 2"},
      {"above_max", with_raster("P5 2 1 100\n", {100, 101}), "sample 1 is 101, above the maximum value 100"},
      {"above_max_text", text_bytes("P2 2 1 9 3 12\n"), "sample 1 is 12, above the maximum value 9"},
      {"maxval_zero", with_raster("P5 1 1 0\n", {0}), "maximum value 0 is outside 1..65535"},
      {"maxval_big", with_raster("P5 1 1 70000\n", {0}), "maximum value 70000 is outside 1..65535"},
      {"width_zero", text_bytes("P2 0 1 255\n"), "image size 0 x 1"},
      {"header_garbage", text_bytes("P5 x 1 255\n"), "expected the width (a decimal number), found byte 'x'"},
      {"text_garbage", text_bytes("P2 2 1 255 1 z\n"), "expected the next sample"},
      {"text_short", text_bytes("P2 2 2 255 1 2 3"), "unexpected end of file, expected the next sample"},
      {"text_extra", text_bytes("P2 1 1 255 1 2"), "unexpected data after the 1 samples"},
      {"no_header", text_bytes("P5"), "unexpected end of file, expected the width"},
      {"wrong_magic", text_bytes("P4 1 1\n"), "not a PGM/PPM file"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.file(std::string(c.name) + ".pgm");
    testing::write_bytes(path, c.bytes);
    expect_error([&] { read_pnm(path); }, {path + ": ", c.message});
  }
}

}  // namespace
}  // namespace bnorm
