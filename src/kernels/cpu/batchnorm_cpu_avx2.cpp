// The AVX2/FMA fast CPU batch norm: the algorithm of batchnorm_cpu_impl.hpp over Avx2, eight
// floats in a ymm register. This file alone is compiled with -mavx2 -mfma (src/CMakeLists.txt),
// so it declines, with the reason, on a CPU without them (cpu_features()).
#include <immintrin.h>

#include "kernels/cpu/batchnorm_cpu.hpp"
#include "kernels/cpu/batchnorm_cpu_impl.hpp"
#include "kernels/cpu/cpu_features.hpp"

namespace bnorm::cpu {
namespace {

struct Avx2 {
  static constexpr int width = 8;
  static constexpr bool can_stream = true;
  __m256 v;

  static Avx2 zero() { return {_mm256_setzero_ps()}; }
  static Avx2 set1(float a) { return {_mm256_set1_ps(a)}; }
  static Avx2 load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static void store(float* p, Avx2 a) { _mm256_storeu_ps(p, a.v); }
  // Non-temporal: the line goes to memory without being read first or kept in cache.
  // p must be 32-byte aligned; fence() after the last one, before anyone reads.
  static void stream(float* p, Avx2 a) { _mm256_stream_ps(p, a.v); }
  static void fence() { _mm_sfence(); }
  friend Avx2 operator+(Avx2 a, Avx2 b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend Avx2 operator-(Avx2 a, Avx2 b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend Avx2 operator*(Avx2 a, Avx2 b) { return {_mm256_mul_ps(a.v, b.v)}; }
  // Lanes below m from a, the others from b.
  static Avx2 first_lanes(int m, Avx2 a, Avx2 b) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 below = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(m), lane));
    return {_mm256_blendv_ps(b.v, a.v, below)};
  }
  // a * b + c, one rounding
  static Avx2 fmadd(Avx2 a, Avx2 b, Avx2 c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  // acc[l] += a[l] for l < 8, widened to double
  static void add_to(double* acc, Avx2 a) {
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(a.v));
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(a.v, 1));
    _mm256_storeu_pd(acc, _mm256_add_pd(_mm256_loadu_pd(acc), lo));
    _mm256_storeu_pd(acc + 4, _mm256_add_pd(_mm256_loadu_pd(acc + 4), hi));
  }
  static void store_to(double* acc, Avx2 a) {
    _mm256_storeu_pd(acc, _mm256_cvtps_pd(_mm256_castps256_ps128(a.v)));
    _mm256_storeu_pd(acc + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(a.v, 1)));
  }
  // acc[0] += the sum of the lanes of a, acc[1] += that of b, each ((0+1)+(4+5))+((2+3)+(6+7)),
  // added in double.
  static void add_lane_sums(double* acc, Avx2 a, Avx2 b) {
    const __m256 h = _mm256_hadd_ps(a.v, b.v);  // a01 a23 b01 b23 | a45 a67 b45 b67
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_hadd_ps(q, q);  // sum(a) sum(b) sum(a) sum(b)
    _mm_storeu_pd(acc, _mm_add_pd(_mm_loadu_pd(acc), _mm_cvtps_pd(q)));
  }
  // Lane j = the sum of the lanes of a[j]: ((0+1)+(2+3))+((4+5)+(6+7)) (three hadd levels).
  static Avx2 lane_sums(const Avx2* a) {
    const __m256 p = _mm256_hadd_ps(_mm256_hadd_ps(a[0].v, a[1].v), _mm256_hadd_ps(a[2].v, a[3].v));
    const __m256 q = _mm256_hadd_ps(_mm256_hadd_ps(a[4].v, a[5].v), _mm256_hadd_ps(a[6].v, a[7].v));
    return {_mm256_add_ps(_mm256_permute2f128_ps(p, q, 0x20), _mm256_permute2f128_ps(p, q, 0x31))};
  }
};

const char* declines_avx2(const BatchNormProblem&) {
  const CpuFeatures& f = cpu_features();
  if (!f.avx2) return "the CPU has no AVX2";
  if (!f.fma) return "the CPU has no FMA";
  return nullptr;
}

}  // namespace

const BatchNormImpl batchnorm_impl_avx2 = {
    .name = "cpu_avx2",
    .declines = declines_avx2,
    .workspace_bytes = workspace_bytes_cpu,
    .forward_train = BatchNormCpu<Avx2>::forward_train,
    .forward_infer = BatchNormCpu<Avx2>::forward_infer,
    .backward = BatchNormCpu<Avx2>::backward,
    .moments = BatchNormCpu<Avx2>::moments,
};

}  // namespace bnorm::cpu
