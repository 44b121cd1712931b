// Shared pieces of the batch-norm tests: the table of cases (named with the problem grammar
// of BatchNormProblem::to_string(), "n2c17s13:nhwc"), random data, tolerance comparisons, and the rule
// for an implementation that declines a case.
//
// Not here: any oracle. The oracles are the reference kernel (fast vs reference), a double
// forward differentiated numerically (gradcheck) and hand-written double sequences (running
// statistics); each lives in the test file that uses it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bnorm/kernels/batchnorm.hpp"
#include "bnorm/layers/batchnorm.hpp"
#include "bnorm/tensor/tensor.hpp"

namespace bnorm {
// gtest prints a parameter of type const BatchNormImpl* with this (found by ADL): its name.
inline void PrintTo(const BatchNormImpl* impl, std::ostream* os) { *os << impl->name; }
}  // namespace bnorm

namespace bnorm::test {

// ---- The problem grammar (BatchNormProblem::parse, shared with `bnorm bench`):
// n<N>c<C>s<S>:<layout>, the spatial size also as its extents (l<L>, h<H>w<W>, d<D>h<H>w<W>).
inline BatchNormProblem parse_problem(const std::string& text) { return BatchNormProblem::parse(text); }

// A gtest-safe name for a problem string: "n2c17s13:nhwc" -> "n2c17s13_nhwc".
inline std::string test_name(std::string text) {
  std::replace_if(text.begin(), text.end(), [](char ch) { return !std::isalnum(ch); }, '_');
  return text;
}

// ---- The table of cases for fast vs reference (and the decline rule). Sizes that are not
// multiples of the vector width, N = 1 with spatial > 1, H = W = 1, C = 1, both layouts and
// every dimensionality (S = 1 is (N, C); S = L; S = H*W; S = D*H*W).
inline const std::vector<std::string>& kernel_cases() {
  static const std::vector<std::string> cases = {
      // (N, C): S = 1. Both layouts are the same memory; both must work.
      "n2c1:nc", "n7c3:nc", "n13c17:nc", "n64c33:nc", "n5c8s1:nhwc",
      // (N, C, L)
      "n3c5l7:ncl", "n4c17l13:nlc", "n2c1l33:ncl",
      // (N, C, H, W)
      "n2c17s13:nchw", "n2c17s13:nhwc", "n1c3h5w5:nchw", "n1c3h5w5:nhwc", "n9c5h1w1:nchw",
      "n9c5h1w1:nhwc", "n3c1h7w9:nchw", "n3c1h7w9:nhwc", "n4c33h3w5:nchw", "n4c33h3w5:nhwc",
      "n2c8h4w4:nchw", "n2c8h4w4:nhwc", "n2c64h9w9:nhwc", "n1c16h16w16:nchw",
      // (N, C, D, H, W)
      "n2c3d3h5w7:ncdhw", "n2c3d3h5w7:ndhwc", "n1c5d2h2w3:ndhwc",
      // Longer channels, so vector loops and tails both run.
      "n3c2s1000:nchw", "n3c2s1000:nhwc", "n2c129s31:nhwc", "n2c129s31:nchw",
      // channels_first channel blocks, long runs whose last len % 8 values are one masked
      // vector: 14x14 (one fold per run), 1001 (several folds, then a tail of one); more
      // channels than a block holds (256): three blocks of 201, 201, 199 on one thread.
      "n2c5h14w14:nchw", "n3c2s1001:nchw", "n2c601s9:nchw",
      // channels_last statistics, swept 4 rows at a time in folds of 32 rows (kFoldSteps):
      // 21 rows (one short fold, 4 * 5 + 1), 18 rows (4 * 4 + 2 lone rows), 37 rows (a full
      // fold, then 4 + 1), 34 rows (a full fold, then 2 lone rows), vectors then lanes
      // (203 = 25 * 8 + 3); more than 2048 channels (two groups, a group narrower than a row).
      "n3c203s7:nhwc", "n3c11s6:nhwc", "n1c203s37:nhwc", "n2c11s17:nhwc", "n9c2061:nc",
      // channels_first, short runs, several images (cpu: images as rows): C % 8 != 0,
      // S % 8 != 0 and == 0, chunks of more than one image (N > 32).
      "n5c19s13:nchw", "n4c16h8w8:nchw", "n6c9h7w7:nchw", "n4c3s128:nchw", "n37c10s9:nchw",
  };
  return cases;
}

// ---- Implementations.
inline std::vector<const BatchNormImpl*> all_impls() {
  std::vector<const BatchNormImpl*> out;
  for (const BatchNormImpl& impl : batchnorm_implementations()) out.push_back(&impl);
  return out;
}
inline std::vector<const BatchNormImpl*> fast_impls() {
  std::vector<const BatchNormImpl*> out;
  for (const BatchNormImpl* impl : all_impls())
    if (std::string(impl->name) != "reference") out.push_back(impl);
  return out;
}
inline const BatchNormImpl& reference_impl() { return batchnorm_impl_by_name("reference"); }

// An implementation that must run every valid problem: the reference, cpu_scalar, and
// cpu_avx2 on a CPU with AVX2 and FMA. Any other decline is a skip with the reason.
inline bool must_accept_everything(const BatchNormImpl& impl) {
  const std::string name = impl.name;
  if (name == "reference" || name == "cpu_scalar") return true;
#if defined(__x86_64__) || defined(__i386__)
  if (name == "cpu_avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return false;
}

// Use at the top of a test body: fails or skips (and returns) when `impl` declines `problem`.
#define BNORM_REQUIRE_ACCEPTS(impl, problem)                                                    \
  do {                                                                                          \
    if (const char* bnorm_why_ = (impl).declines(problem)) {                                    \
      if (::bnorm::test::must_accept_everything(impl))                                          \
        FAIL() << (impl).name << " must accept every valid problem but declines "              \
               << (problem).to_string() << ": " << bnorm_why_;                                  \
      GTEST_SKIP() << (impl).name << " declines " << (problem).to_string() << ": " << bnorm_why_; \
    }                                                                                           \
  } while (0)

// For layer tests, which run whatever batchnorm_select picks: when BNORM_IMPL forces an
// implementation that may decline here (cpu_avx2 on a CPU without AVX2), skip instead of failing.
#define BNORM_REQUIRE_FORCED_IMPL_ACCEPTS(problem)                                     \
  do {                                                                                 \
    if (const char* bnorm_forced_ = std::getenv("BNORM_IMPL"); bnorm_forced_ && *bnorm_forced_) \
      BNORM_REQUIRE_ACCEPTS(::bnorm::batchnorm_impl_by_name(bnorm_forced_), problem);  \
  } while (0)

// (implementation, problem string): the parameter of the fast-vs-reference suites.
struct ImplCase {
  const BatchNormImpl* impl;
  std::string text;
  BatchNormProblem problem() const { return parse_problem(text); }
};
inline void PrintTo(const ImplCase& c, std::ostream* os) { *os << c.impl->name << " " << c.text; }
inline std::string impl_case_name(const ::testing::TestParamInfo<ImplCase>& info) {
  return std::string(info.param.impl->name) + "_" + test_name(info.param.text);
}
inline std::vector<ImplCase> cross(const std::vector<const BatchNormImpl*>& impls,
                                   const std::vector<std::string>& cases) {
  std::vector<ImplCase> out;
  for (const BatchNormImpl* impl : impls)
    for (const std::string& c : cases) out.push_back({impl, c});
  return out;
}

// ---- Random data (deterministic per seed).
inline std::vector<float> random_uniform(std::size_t n, std::uint32_t seed, float lo, float hi) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& e : v) e = dist(gen);
  return v;
}
inline std::vector<float> random_normal(std::size_t n, std::uint32_t seed, double mean,
                                        double stddev) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> dist(mean, stddev);
  std::vector<float> v(n);
  for (float& e : v) e = static_cast<float>(dist(gen));
  return v;
}
// Channel c gets its own offset and scale, so a mix-up of channels shows.
inline std::vector<float> random_input(const BatchNormProblem& p, std::uint32_t seed) {
  std::vector<float> x = random_uniform(static_cast<std::size_t>(p.numel()), seed, -1.0f, 1.0f);
  for (std::int64_t n = 0; n < p.batch; ++n)
    for (std::int64_t c = 0; c < p.channels; ++c)
      for (std::int64_t s = 0; s < p.spatial; ++s) {
        const std::int64_t i = p.layout == Layout::channels_first ? (n * p.channels + c) * p.spatial + s
                                                                  : (n * p.spatial + s) * p.channels + c;
        x[i] = x[i] * (0.5f + 0.25f * static_cast<float>(c % 7)) + static_cast<float>(c % 5) - 2.0f;
      }
  return x;
}
inline std::size_t index_of(const BatchNormProblem& p, std::int64_t n, std::int64_t c,
                            std::int64_t s) {
  return static_cast<std::size_t>(p.layout == Layout::channels_first
                                      ? (n * p.channels + c) * p.spatial + s
                                      : (n * p.spatial + s) * p.channels + c);
}
inline std::int64_t channel_of(const BatchNormProblem& p, std::size_t i) {
  const auto j = static_cast<std::int64_t>(i);
  return p.layout == Layout::channels_first ? (j / p.spatial) % p.channels : j % p.channels;
}

// Adds `offset` to the values of channel c that the fast kernels average into their pivot
// (batchnorm_cpu_common.hpp, sample_pivots): the first 16 in (n, s) order (channels_first:
// its first value, or the first 8 of image 0; (N, C): the first 16 rows) and the 16 at
// i = j * m / 16 (about where channels_last images sample rows), so that every layout's
// pivot lands far from the channel's mean and the channel is summed again around it.
inline void put_pivots_far(const BatchNormProblem& p, std::vector<float>& x, std::int64_t c,
                           float offset) {
  const std::int64_t m = p.values_per_channel();
  std::vector<std::int64_t> far;  // indices in the channel's (n, s) order
  for (std::int64_t j = 0; j < std::min<std::int64_t>(16, m); ++j)
    far.push_back(j), far.push_back(j * m / 16), far.push_back(j * (m / 16));
  std::sort(far.begin(), far.end());
  far.erase(std::unique(far.begin(), far.end()), far.end());
  for (std::int64_t i : far) x[index_of(p, i / p.spatial, c, i % p.spatial)] += offset;
}

// ---- Comparison. |actual - expected| <= atol + rtol * |expected| for every element; NaN
// only matches NaN. Reports the count and the first few mismatches with their index.
template <typename A, typename E>
::testing::AssertionResult all_close(const char* what, const A* actual, const E* expected,
                                     std::size_t n, double rtol, double atol) {
  std::ostringstream out;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = actual[i], e = expected[i];
    const bool ok = (std::isnan(a) && std::isnan(e)) || a == e ||
                    std::abs(a - e) <= atol + rtol * std::abs(e);
    if (!ok && ++bad <= 5)
      out << "\n  " << what << "[" << i << "] = " << a << ", expected " << e << " (diff "
          << std::abs(a - e) << ", allowed " << atol + rtol * std::abs(e) << ")";
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << n << " elements of " << what
                                       << " differ" << out.str();
}
template <typename A, typename E>
::testing::AssertionResult all_close(const char* what, const std::vector<A>& actual,
                                     const std::vector<E>& expected, double rtol, double atol) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure() << what << ": sizes " << actual.size() << " and "
                                         << expected.size();
  return all_close(what, actual.data(), expected.data(), actual.size(), rtol, atol);
}
// Bitwise equality (NaN payloads included), for the thread-count and eval-row tests.
inline ::testing::AssertionResult bitwise_equal(const char* what, const std::vector<float>& a,
                                                const std::vector<float>& b) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << what << ": sizes " << a.size() << " and " << b.size();
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0)
      return ::testing::AssertionFailure() << what << "[" << i << "]: " << a[i] << " vs " << b[i]
                                           << " (first difference)";
  return ::testing::AssertionSuccess();
}

// The same with a tolerance per element (e.g. per channel for dgamma and dbeta).
template <typename A, typename E>
::testing::AssertionResult all_within(const char* what, const std::vector<A>& actual,
                                      const std::vector<E>& expected,
                                      const std::vector<double>& tolerance) {
  std::ostringstream out;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double a = actual[i], e = expected[i];
    if (!(std::abs(a - e) <= tolerance[i]) && ++bad <= 5)
      out << "\n  " << what << "[" << i << "] = " << a << ", expected " << e << " (diff "
          << std::abs(a - e) << ", allowed " << tolerance[i] << ")";
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << expected.size() << " elements of "
                                       << what << " differ" << out.str();
}

// A buffer holding a copy of `values`, 64-byte aligned (as Tensor storage is), or starting
// one float past that (kernels must not assume alignment). It ends exactly where its
// allocation ends, so AddressSanitizer sees any write past it.
class Buffer {
 public:
  explicit Buffer(const std::vector<float>& values, bool misaligned = false)
      : offset_(misaligned ? 1 : 0), size_(values.size()),
        storage_(static_cast<float*>(::operator new[]((size_ + offset_) * sizeof(float),
                                                      std::align_val_t{64}))) {
    std::copy(values.begin(), values.end(), data());
  }
  float* data() { return storage_.get() + offset_; }
  std::vector<float> values() const {
    return {storage_.get() + offset_, storage_.get() + offset_ + size_};
  }

 private:
  struct Free {
    void operator()(float* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::size_t offset_, size_;
  std::unique_ptr<float[], Free> storage_;
};

inline double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float e : v) m = std::max(m, static_cast<double>(std::abs(e)));
  return m;
}

inline std::vector<std::byte> workspace_for(const BatchNormImpl& impl, const BatchNormProblem& p) {
  return std::vector<std::byte>(impl.workspace_bytes(p));
}

// The message of the exception of type E that `f` throws ("" and a failure if none).
template <typename E, typename F>
std::string thrown_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return "";
}

// ---- Layers and tensors.
// BatchNorm1d for rank 2 and 3, BatchNorm2d for rank 4, BatchNorm3d for rank 5.
inline std::unique_ptr<BatchNorm> make_layer(int rank, const BatchNormOptions& options) {
  if (rank <= 3) return std::make_unique<BatchNorm1d>(options);
  if (rank == 4) return std::make_unique<BatchNorm2d>(options);
  return std::make_unique<BatchNorm3d>(options);
}
inline Tensor tensor_of(const std::vector<float>& values, const Shape& shape, Layout layout) {
  Tensor t = Tensor::empty(shape, layout);
  if (static_cast<std::size_t>(t.numel()) != values.size())
    throw std::invalid_argument("tensor_of: " + std::to_string(values.size()) + " values for " +
                                shape.to_string());
  std::copy(values.begin(), values.end(), t.data_f32());
  return t;
}
inline std::vector<float> values_of(const Tensor& t) {
  return {t.data_f32(), t.data_f32() + t.numel()};
}
// "4x3x5x5:nhwc"-style names for layer cases are the problem strings of their shapes.
inline std::string layer_case_text(const Shape& shape, Layout layout) {
  // (An ostringstream, not operator+: GCC 12 gives a false -Wrestrict on "literal" + string.)
  static const char* const spatial_names[3][3] = {{"l"}, {"h", "w"}, {"d", "h", "w"}};
  static const char* const cf[] = {"nc", "ncl", "nchw", "ncdhw"};
  static const char* const cl[] = {"nc", "nlc", "nhwc", "ndhwc"};
  std::ostringstream text;
  text << 'n' << shape[0] << 'c' << shape[1];
  for (int axis = 2; axis < shape.rank(); ++axis)
    text << spatial_names[shape.rank() - 3][axis - 2] << shape[axis];
  text << ':' << (layout == Layout::channels_first ? cf : cl)[shape.rank() - 2];
  return text.str();
}

}  // namespace bnorm::test
