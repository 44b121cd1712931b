// PNG decoding with libpng's low-level API, which (unlike the simplified png_image API) leaves
// sample values alone: no gamma or color-space conversion, so a stored 128 reads as 128/255.
//
// libpng reports errors by longjmp. Each function below that calls into libpng sets its own
// jump point and holds only trivially destructible locals, so a longjmp never skips a C++
// destructor; the memory and the libpng structures live in the caller (PngReader).
#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "bnorm/data/image.hpp"

namespace bnorm {
namespace {

struct PngReader {
  std::FILE* file = nullptr;
  png_structp png = nullptr;
  png_infop info = nullptr;
  char message[256] = "unknown libpng error";

  ~PngReader() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    if (file) std::fclose(file);
  }
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* reader = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(reader->message, sizeof reader->message, "%s", message);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}  // e.g. unknown ancillary chunks: harmless

struct PngHeader {
  png_uint_32 width = 0, height = 0;
  int channels = 0;   // after the transformations: 1 (gray) or 3 (RGB)
  int bit_depth = 0;  // 8 or 16
  std::size_t row_bytes = 0;
};

// Reads the header and sets the transformations that turn every PNG kind into 8- or 16-bit
// gray or RGB without alpha. False on a libpng error (message in reader.message).
bool read_png_header(PngReader& reader, PngHeader& header) {
  if (setjmp(png_jmpbuf(reader.png))) return false;
  png_init_io(reader.png, reader.file);
  png_set_user_limits(reader.png, image_max_side, image_max_side);
  png_read_info(reader.png, reader.info);
  const int color_type = png_get_color_type(reader.png, reader.info);
  const int bit_depth = png_get_bit_depth(reader.png, reader.info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(reader.png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(reader.png);
  png_set_strip_alpha(reader.png);
  png_set_interlace_handling(reader.png);
  png_read_update_info(reader.png, reader.info);
  header.width = png_get_image_width(reader.png, reader.info);
  header.height = png_get_image_height(reader.png, reader.info);
  header.channels = png_get_channels(reader.png, reader.info);
  header.bit_depth = png_get_bit_depth(reader.png, reader.info);
  header.row_bytes = png_get_rowbytes(reader.png, reader.info);
  return true;
}

bool read_png_rows(PngReader& reader, png_bytepp rows) {
  if (setjmp(png_jmpbuf(reader.png))) return false;
  png_read_image(reader.png, rows);
  png_read_end(reader.png, nullptr);  // checks the chunks after the image data up to IEND
  return true;
}

}  // namespace

Tensor read_png(const std::string& path, const ImageReadOptions& options) {
  check_image_options(options, path);
  auto fail = [&](const std::string& what) -> std::runtime_error { return std::runtime_error(path + ": " + what); };
  PngReader reader;
  reader.file = std::fopen(path.c_str(), "rb");
  if (!reader.file) throw fail(std::string("cannot open: ") + std::strerror(errno));
  unsigned char signature[8] = {};
  const std::size_t got = std::fread(signature, 1, 8, reader.file);
  if (got < 8 || png_sig_cmp(signature, 0, 8) != 0) throw fail("not a PNG file (bad signature)");
  reader.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, on_png_error, on_png_warning);
  if (!reader.png) throw fail("libpng could not start");
  reader.info = png_create_info_struct(reader.png);
  if (!reader.info) throw fail("libpng could not start");
  png_set_sig_bytes(reader.png, 8);

  PngHeader header;
  if (!read_png_header(reader, header)) throw fail(std::string("corrupt PNG: ") + reader.message);
  if ((header.channels != 1 && header.channels != 3) || (header.bit_depth != 8 && header.bit_depth != 16))
    throw fail("unsupported PNG: " + std::to_string(header.channels) + " channels of " +
               std::to_string(header.bit_depth) + " bits after conversion");
  std::vector<unsigned char> pixels(header.row_bytes * header.height);
  std::vector<png_bytep> rows(header.height);
  for (png_uint_32 y = 0; y < header.height; ++y) rows[y] = pixels.data() + y * header.row_bytes;
  if (!read_png_rows(reader, rows.data())) throw fail(std::string("corrupt PNG: ") + reader.message);

  const std::int64_t c = header.channels, h = header.height, w = header.width, plane = h * w;
  Tensor image = Tensor::empty(Shape{1, c, h, w});
  float* out = image.data_f32();
  for (std::int64_t y = 0; y < h; ++y) {
    const unsigned char* row = rows[y];
    for (std::int64_t x = 0; x < w; ++x)
      for (std::int64_t ch = 0; ch < c; ++ch) {
        const std::int64_t k = x * c + ch;  // interleaved samples in the row
        out[ch * plane + y * w + x] =
            header.bit_depth == 8 ? static_cast<float>(row[k]) / 255.0f
                                  : static_cast<float>((row[2 * k] << 8) | row[2 * k + 1]) / 65535.0f;
      }
  }
  return convert_image_channels(image, options.channels);
}

}  // namespace bnorm
