// Netpbm (PGM/PPM) reading, the dispatch on file signature, and the channel conversions that
// PNG and PNM share. PNG decoding itself is in png.cpp.
#include "bnorm/data/image.hpp"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "bnorm/data/input_file.hpp"

namespace bnorm {

Tensor convert_image_channels(const Tensor& image, int channels) {
  const std::int64_t c = image.dim(1), h = image.dim(2), w = image.dim(3), plane = h * w;
  if (channels != 0 && channels != 1 && channels != 3)
    throw std::invalid_argument("convert_image_channels: channels must be 0, 1 or 3, got " + std::to_string(channels));
  if (channels == 0 || channels == c) return image;
  if (c != 1 && c != 3)
    throw std::invalid_argument("convert_image_channels: expected a gray or RGB image, got " + image.describe());
  Tensor out = Tensor::empty(Shape{1, channels, h, w});
  const float* in = image.data_f32();
  float* o = out.data_f32();
  if (channels == 1) {  // RGB -> gray, ITU-R BT.601 luma
    for (std::int64_t p = 0; p < plane; ++p)
      o[p] = 0.299f * in[p] + 0.587f * in[plane + p] + 0.114f * in[2 * plane + p];
  } else {  // gray -> RGB
    for (int ch = 0; ch < 3; ++ch) std::memcpy(o + ch * plane, in, static_cast<std::size_t>(plane) * sizeof(float));
  }
  return out;
}

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

// A cursor over a PNM file's bytes that knows the header grammar: whitespace and # comments
// between decimal numbers.
struct PnmCursor {
  const std::vector<std::uint8_t>& bytes;
  const std::string& path;
  std::size_t at = 0;

  void skip_space_and_comments() {
    while (at < bytes.size()) {
      if (bytes[at] == '#') {
        while (at < bytes.size() && bytes[at] != '\n' && bytes[at] != '\r') ++at;
      } else if (std::isspace(bytes[at])) {
        ++at;
      } else {
        return;
      }
    }
  }
  // A non-negative decimal number; `what` names it for the error message.
  long number(const char* what) {
    skip_space_and_comments();
    if (at >= bytes.size()) fail(path, std::string("unexpected end of file, expected the ") + what);
    if (!std::isdigit(bytes[at]))
      fail(path, std::string("expected the ") + what + " (a decimal number), found byte '" +
                     static_cast<char>(bytes[at]) + "' at offset " + std::to_string(at));
    long value = 0;
    while (at < bytes.size() && std::isdigit(bytes[at])) {
      value = value * 10 + (bytes[at++] - '0');
      if (value > 1'000'000'000) fail(path, std::string("the ") + what + " is too large");
    }
    return value;
  }
};

}  // namespace

void check_image_options(const ImageReadOptions& options, const std::string& path) {
  if (options.channels != 0 && options.channels != 1 && options.channels != 3)
    throw std::invalid_argument(path + ": ImageReadOptions::channels must be 0 (as stored), 1 or 3, got " +
                                std::to_string(options.channels));
}

Tensor read_pnm(const std::string& path, const ImageReadOptions& options) {
  check_image_options(options, path);
  const std::vector<std::uint8_t> bytes = read_whole_file(path, std::uint64_t{1} << 32);
  if (bytes.size() < 2 || bytes[0] != 'P' || !(bytes[1] == '2' || bytes[1] == '3' || bytes[1] == '5' || bytes[1] == '6'))
    fail(path, "not a PGM/PPM file: expected \"P2\", \"P3\", \"P5\" or \"P6\" at the start");
  const bool text = bytes[1] == '2' || bytes[1] == '3';
  const std::int64_t channels = (bytes[1] == '3' || bytes[1] == '6') ? 3 : 1;
  PnmCursor cursor{bytes, path, 2};
  const long width = cursor.number("width");
  const long height = cursor.number("height");
  const long maxval = cursor.number("maximum value");
  if (width < 1 || height < 1 || width > image_max_side || height > image_max_side)
    fail(path, "image size " + std::to_string(width) + " x " + std::to_string(height) + " is outside 1.." +
                   std::to_string(image_max_side));
  if (maxval < 1 || maxval > 65535) fail(path, "maximum value " + std::to_string(maxval) + " is outside 1..65535");

  const std::int64_t plane = static_cast<std::int64_t>(width) * height;
  const std::int64_t samples = plane * channels;
  Tensor image = Tensor::empty(Shape{1, channels, height, width});
  float* out = image.data_f32();
  const float scale = 1.0f / static_cast<float>(maxval);
  // Samples come interleaved (R G B R G B ...); the tensor is channel-planar.
  auto store = [&](std::int64_t k, long sample) {
    if (sample > maxval)
      fail(path, "sample " + std::to_string(k) + " is " + std::to_string(sample) + ", above the maximum value " +
                     std::to_string(maxval));
    const std::int64_t p = k / channels, ch = k % channels;
    out[ch * plane + p] = maxval == 255 ? static_cast<float>(sample) / 255.0f : static_cast<float>(sample) * scale;
  };

  if (text) {
    for (std::int64_t k = 0; k < samples; ++k) store(k, cursor.number("next sample"));
    cursor.skip_space_and_comments();
    if (cursor.at != bytes.size())
      fail(path, "unexpected data after the " + std::to_string(samples) + " samples, at offset " +
                     std::to_string(cursor.at));
  } else {
    // Exactly one whitespace byte separates maxval from the raster.
    if (cursor.at >= bytes.size() || !std::isspace(bytes[cursor.at]))
      fail(path, "expected one whitespace byte after the maximum value");
    ++cursor.at;
    const std::int64_t sample_bytes = maxval > 255 ? 2 : 1;
    const std::uint64_t expected = static_cast<std::uint64_t>(samples * sample_bytes);
    const std::uint64_t found = bytes.size() - cursor.at;
    if (found != expected)
      fail(path, "expected " + std::to_string(expected) + " bytes of samples after the header (" + std::to_string(width) +
                     " x " + std::to_string(height) + " x " + std::to_string(channels) + " x " +
                     std::to_string(sample_bytes) + "), found " + std::to_string(found));
    const std::uint8_t* raster = bytes.data() + cursor.at;
    for (std::int64_t k = 0; k < samples; ++k)
      store(k, sample_bytes == 1 ? long{raster[k]} : (long{raster[2 * k]} << 8) | long{raster[2 * k + 1]});
  }
  return convert_image_channels(image, options.channels);
}

Tensor read_image(const std::string& path, const ImageReadOptions& options) {
  check_image_options(options, path);
  unsigned char head[8] = {};
  std::size_t got = 0;
  {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (!file) fail(path, std::string("cannot open: ") + std::strerror(errno));
    got = std::fread(head, 1, sizeof head, file);
    std::fclose(file);
  }
  static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (got == 8 && std::memcmp(head, png_signature, 8) == 0) return read_png(path, options);
  if (got >= 2 && head[0] == 'P' && std::strchr("2356", head[1]) && head[1] != 0) return read_pnm(path, options);
  fail(path, "not an image this program reads: expected a PNG signature or a PGM/PPM header (P2, P3, P5, P6)");
}

}  // namespace bnorm
