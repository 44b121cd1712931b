// bnorm/data/standardize.hpp: input standardization, x' = (x - mean) / std.
//
// The statistics come from the TRAINING set only and are then applied unchanged to the
// validation and test sets and to every image given for prediction, so they belong to the
// model: a model file stores them (the fields below are plain vectors for that reason).
//
// Modes, all with the population (biased) standard deviation, accumulated in double:
//   none         x' = x (mean and stddev are empty);
//   global       one mean and one std over every pixel of every training image;
//   per-channel  one per channel (C values), over N, H, W;
//   per-pixel    one per input position (C*H*W values, (C, H, W) order), over N.
// A std below standardize_min_stddev (a pixel that is the same in every image, as MNIST's
// borders are) is stored as 1, so that pixel is only centred instead of divided by zero.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bnorm/data/dataset.hpp"
#include "bnorm/tensor/tensor.hpp"

namespace bnorm {

enum class Standardization : std::uint8_t { none, global, per_channel, per_pixel };
const char* to_string(Standardization mode);  // "none", "global", "per-channel", "per-pixel"
// Accepts the names above (and "per_channel", "per_pixel"); throws std::invalid_argument
// listing the choices otherwise.
Standardization parse_standardization(std::string_view name);

inline constexpr double standardize_min_stddev = 1e-6;

struct Standardizer {
  Standardization mode = Standardization::none;
  std::vector<std::int64_t> example_shape;  // (C, H, W) of the training images; empty for none
  std::vector<float> mean;                  // none: 0, global: 1, per-channel: C, per-pixel: C*H*W
  std::vector<float> stddev;                // as many as mean, every one > 0

  // Throws std::invalid_argument when the sizes do not match the mode and shape, or a stddev is
  // not positive and finite (a model file that was edited or truncated).
  void validate() const;
  // x' = (x - mean) / stddev in place. `images` is (N, C, H, W), either layout, with (C, H, W)
  // equal to example_shape (any shape for none); one image for prediction is (1, C, H, W).
  // Every tensor sharing the memory sees the change.
  void apply(Tensor& images) const;
  void apply(Dataset& data) const { apply(data.images); }
};

// Statistics of `train_images` ((N, C, H, W) channels_first, N >= 1) for `mode`.
Standardizer fit_standardizer(const Tensor& train_images, Standardization mode);
inline Standardizer fit_standardizer(const Dataset& train, Standardization mode) {
  return fit_standardizer(train.images, mode);
}

}  // namespace bnorm
