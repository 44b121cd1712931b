// The portable fast CPU batch norm: the algorithm of batchnorm_cpu_impl.hpp over Lanes8, eight
// floats in plain C++ loops that the compiler turns into SSE2 at the baseline x86-64 ISA (and
// into whatever the target has elsewhere). Same blocking, threading and precision as cpu_avx2;
// runs anywhere, so it never declines.
#include "kernels/cpu/batchnorm_cpu.hpp"
#include "kernels/cpu/batchnorm_cpu_impl.hpp"

namespace bnorm::cpu {
namespace {

// Eight lanes, each op a fixed-length loop (vectorized as two SSE registers).
struct Lanes8 {
  static constexpr int width = 8;
  static constexpr bool can_stream = false;  // no portable non-temporal store
  float v[8];

  static Lanes8 zero() { return set1(0.0f); }
  static Lanes8 set1(float a) {
    Lanes8 r;
    for (int l = 0; l < 8; ++l) r.v[l] = a;
    return r;
  }
  static Lanes8 load(const float* p) {
    Lanes8 r;
    for (int l = 0; l < 8; ++l) r.v[l] = p[l];
    return r;
  }
  static void store(float* p, Lanes8 a) {
    for (int l = 0; l < 8; ++l) p[l] = a.v[l];
  }
  static void stream(float* p, Lanes8 a) { store(p, a); }
  static void fence() {}
  friend Lanes8 operator+(Lanes8 a, Lanes8 b) {
    for (int l = 0; l < 8; ++l) a.v[l] += b.v[l];
    return a;
  }
  friend Lanes8 operator-(Lanes8 a, Lanes8 b) {
    for (int l = 0; l < 8; ++l) a.v[l] -= b.v[l];
    return a;
  }
  friend Lanes8 operator*(Lanes8 a, Lanes8 b) {
    for (int l = 0; l < 8; ++l) a.v[l] *= b.v[l];
    return a;
  }
  // Lanes below m from a, the others from b.
  static Lanes8 first_lanes(int m, Lanes8 a, Lanes8 b) {
    for (int l = m; l < 8; ++l) a.v[l] = b.v[l];
    return a;
  }
  // a * b + c, two roundings (no FMA at baseline).
  static Lanes8 fmadd(Lanes8 a, Lanes8 b, Lanes8 c) { return a * b + c; }
  // acc[l] += a[l], in double.
  static void add_to(double* acc, Lanes8 a) {
    for (int l = 0; l < 8; ++l) acc[l] += a.v[l];
  }
  static void store_to(double* acc, Lanes8 a) {
    for (int l = 0; l < 8; ++l) acc[l] = a.v[l];
  }
  // acc[0] += the sum of the lanes of a, acc[1] += that of b, in the order of
  // Avx2::add_lane_sums.
  static void add_lane_sums(double* acc, Lanes8 a, Lanes8 b) {
    auto sum = [](const float* v) {
      return ((v[0] + v[1]) + (v[4] + v[5])) + ((v[2] + v[3]) + (v[6] + v[7]));
    };
    acc[0] += sum(a.v), acc[1] += sum(b.v);
  }
  // Lane j = the sum of the lanes of a[j], in the order of Avx2::lane_sums.
  static Lanes8 lane_sums(const Lanes8* a) {
    Lanes8 r;
    for (int j = 0; j < 8; ++j) {
      const float* v = a[j].v;
      r.v[j] = ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
    }
    return r;
  }
};

}  // namespace

const BatchNormImpl batchnorm_impl_scalar = {
    .name = "cpu_scalar",
    .declines = [](const BatchNormProblem&) -> const char* { return nullptr; },
    .workspace_bytes = workspace_bytes_cpu,
    .forward_train = BatchNormCpu<Lanes8>::forward_train,
    .forward_infer = BatchNormCpu<Lanes8>::forward_infer,
    .backward = BatchNormCpu<Lanes8>::backward,
    .moments = BatchNormCpu<Lanes8>::moments,
};

}  // namespace bnorm::cpu
