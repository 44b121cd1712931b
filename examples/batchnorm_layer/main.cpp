// One training step and one inference step of a BatchNorm2d layer, through the installed
// library. Prints the per-channel mean and variance of the output (0 and ~1 in training).
#include <bnorm/layers/batchnorm.hpp>

#include <cmath>
#include <cstdio>
#include <random>

int main() {
  const std::int64_t n = 8, c = 3, h = 5, w = 5;
  bnorm::BatchNorm2d bn({.num_features = c, .layout = bnorm::Layout::channels_first});

  bnorm::Tensor x = bnorm::Tensor::empty({n, c, h, w});
  std::mt19937 rng(42);
  std::normal_distribution<float> normal(3.0f, 2.0f);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data_f32()[i] = normal(rng);

  bnorm::Tensor y = bn.forward(x);  // training mode: batch statistics
  bool ok = true;
  for (std::int64_t ch = 0; ch < c; ++ch) {
    double sum = 0, sum_sq = 0;
    for (std::int64_t b = 0; b < n; ++b)
      for (std::int64_t s = 0; s < h * w; ++s) {
        const double v = y.data_f32()[(b * c + ch) * h * w + s];
        sum += v;
        sum_sq += v * v;
      }
    const double mean = sum / (n * h * w), var = sum_sq / (n * h * w) - mean * mean;
    std::printf("channel %lld: mean %+.6f var %.6f running_mean %.4f\n", static_cast<long long>(ch),
                mean, var, bn.running_mean().data_f32()[ch]);
    ok = ok && std::abs(mean) < 1e-5 && std::abs(var - 1.0) < 1e-3;
  }
  bn.eval();
  bnorm::Tensor y_eval = bn.forward(x);  // running statistics
  std::printf("eval output[0] = %.6f\n", y_eval.data_f32()[0]);
  std::printf(ok ? "ok\n" : "FAILED\n");
  return ok ? 0 : 1;
}
