// bnorm/data/image.hpp: reading single images for prediction.
//
// The result is a (1, C, H, W) float32 channels-first tensor with values in [0, 1]: sample /
// maxval for PGM/PPM (so / 255 for 8-bit files, as the training data), sample / 255 or / 65535
// for 8- or 16-bit PNG. Conversions, all explicit:
//   PNG   gray (1, 2, 4, 8 or 16 bits) -> C = 1; RGB -> C = 3; palette -> C = 3 (its RGB colors);
//         an alpha channel or a tRNS transparency is dropped (not composited): the color values
//         are read as they are stored. Interlaced files are read too.
//   PGM   P5 (binary) and P2 (text) -> C = 1; PPM P6 and P3 -> C = 3; maxval 1..65535
//         (two big-endian bytes per sample above 255); # comments in the header.
// ImageReadOptions::channels converts afterwards: RGB -> gray with the ITU-R BT.601 luma
// weights (0.299 R + 0.587 G + 0.114 B), gray -> RGB by repeating the value.
// The caller (the predictor) checks C, H and W against what its model expects.
//
// Corrupt files (bad signature, truncated data, bad checksums, samples above maxval, trailing
// bytes after a binary raster) throw std::runtime_error naming the path and the problem.
#pragma once

#include <string>

#include "bnorm/tensor/tensor.hpp"

namespace bnorm {

struct ImageReadOptions {
  int channels = 0;  // 0: as stored; 1: convert to gray; 3: convert to RGB
};

// Decides by the first bytes ("\x89PNG", "P2"/"P3"/"P5"/"P6"), not by the file name.
Tensor read_image(const std::string& path, const ImageReadOptions& options = {});
Tensor read_png(const std::string& path, const ImageReadOptions& options = {});
Tensor read_pnm(const std::string& path, const ImageReadOptions& options = {});

// A (1, C, H, W) gray (C = 1) or RGB (C = 3) image with `channels` channels (0: unchanged),
// converted as described above. Returns `image` itself when nothing changes.
Tensor convert_image_channels(const Tensor& image, int channels);
// Throws std::invalid_argument naming `path` unless options.channels is 0, 1 or 3.
void check_image_options(const ImageReadOptions& options, const std::string& path);

// Images above this many pixels per side are rejected as corrupt before any memory is taken.
inline constexpr long image_max_side = 1 << 15;

}  // namespace bnorm
