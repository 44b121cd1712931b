// Linear through oneDNN's sgemm (row-major, the C API's BLAS-like entry point): three
// products plus the bias as a broadcast before / a column sum after.
//
// The products that touch the weight are split between threads by rows of W (output
// features), each thread calling sgemm on its block: thread t computes the outputs of its
// rows in forward and the gradient of its rows in backward, which are the elements the
// optimizer and zero_grad give it too (bnorm/util/parallel.hpp), so W, dW and the optimizer
// state stay in that core's cache from step to step. With oneDNN splitting the products its
// own way, mlp-paper's SGD update after a two-thread backward took 40-140 us instead of 17
// (cache-to-cache transfers: the two vCPUs here share no L2). oneDNN's sgemm called inside an
// OpenMP region runs on the calling thread.
#include "bnorm/layers/linear.hpp"

#include <oneapi/dnnl/dnnl.h>

#include "bnorm/util/parallel.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace bnorm {
namespace {

// C (M, N) = op(A) op(B) + beta * C, all row-major with leading dimensions lda, ldb, ldc.
void sgemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc) {
  const dnnl_status_t status = dnnl_sgemm(transpose_a ? 'T' : 'N', transpose_b ? 'T' : 'N', m, n, k,
                                          1.0f, a, lda, b, ldb, beta, c, ldc);
  if (status != dnnl_success)
    throw std::runtime_error("linear: dnnl_sgemm failed (status " + std::to_string(status) + ") for M=" +
                             std::to_string(m) + " N=" + std::to_string(n) + " K=" + std::to_string(k));
}

// Below this many multiply-adds a product runs on one thread (60x100x100 is 600k).
constexpr std::int64_t parallel_min_multiply_adds = std::int64_t{1} << 18;

// block(begin, end) once for all rows when the product is small, else for contiguous blocks
// of [0, rows), one per thread, split as parallel_ranges splits elements.
template <class Block>
void for_row_blocks(std::int64_t rows, std::int64_t multiply_adds, const Block& block) {
  if (multiply_adds < parallel_min_multiply_adds) return block(std::int64_t{0}, rows);
  std::string error;
  parallel_ranges(rows, 0, 1, [&](std::int64_t begin, std::int64_t end) {
    try {
      block(begin, end);
    } catch (const std::exception& e) {  // no exception may leave an OpenMP region
#pragma omp critical(bnorm_linear_error)
      error = e.what();
    }
  });
  if (!error.empty()) throw std::runtime_error(error);
}

}  // namespace

Linear::Linear(const LinearOptions& options) : options_(options) {
  if (options.in_features < 1 || options.out_features < 1)
    throw std::invalid_argument("linear: in_features and out_features must be >= 1, got " +
                                std::to_string(options.in_features) + " -> " +
                                std::to_string(options.out_features));
  weight_ = Tensor::zeros({options.out_features, options.in_features});
  weight_grad_ = Tensor::zeros({options.out_features, options.in_features});
  if (options.bias) {
    bias_ = Tensor::zeros({options.out_features});
    bias_grad_ = Tensor::zeros({options.out_features});
  }
}

Linear::~Linear() = default;

std::string Linear::describe() const {
  return "linear(" + std::to_string(options_.in_features) + " -> " +
         std::to_string(options_.out_features) + (options_.bias ? "" : ", bias=false") + ")";
}

std::vector<ParameterRef> Linear::parameters() {
  std::vector<ParameterRef> refs{
      {.name = "weight", .value = &weight_, .grad = &weight_grad_, .role = ParameterRole::weight}};
  if (options_.bias)
    refs.push_back({.name = "bias", .value = &bias_, .grad = &bias_grad_, .role = ParameterRole::bias});
  return refs;
}

Shape Linear::output_shape(const Shape& input) const {
  if (input.rank() != 2 || input[1] != options_.in_features || input[0] < 1)
    throw std::invalid_argument(describe() + " expects an input (N, " +
                                std::to_string(options_.in_features) + ") with N >= 1, got " +
                                input.to_string());
  return Shape{input[0], options_.out_features};
}

// The parameters are public (weight() returns a reference): a loader may have replaced them.
void Linear::check_parameters() const {
  const Shape w{options_.out_features, options_.in_features};
  const Shape b{options_.out_features};
  if (!weight_.defined() || !(weight_.shape() == w) || !weight_grad_.defined() || !(weight_grad_.shape() == w) ||
      (options_.bias && (!bias_.defined() || !(bias_.shape() == b) || !bias_grad_.defined() ||
                         !(bias_grad_.shape() == b))))
    throw std::logic_error(describe() + ": parameters were replaced by tensors of the wrong shape: weight " +
                           weight_.describe() + ", expected " + w.to_string() +
                           (options_.bias ? ", bias " + bias_.describe() + ", expected " + b.to_string() : ""));
}

Tensor Linear::forward(const Tensor& x) {
  if (!x.defined()) throw std::invalid_argument(describe() + ": forward got an undefined tensor");
  const Shape out_shape = output_shape(x.shape());
  check_parameters();
  const std::int64_t n = x.dim(0), in = options_.in_features, out = options_.out_features;
  Tensor y = Tensor::empty(out_shape);
  float* py = y.data_f32();
  // Each thread computes y^T[rows] (rows, N) = W[rows] x^T into scratch and transposes it
  // into y[:, rows], adding the bias on the way: for short batches (mlp-paper's 60) oneDNN's
  // sgemm runs this orientation 1.3x faster than y[:, rows] = x W[rows]^T.
  Tensor transposed = Tensor::empty({out, n});
  const float* px = x.data_f32();
  const float* pw = weight_.data_f32();
  const float* pb = options_.bias ? bias_.data_f32() : nullptr;
  float* pt = transposed.data_f32();
  for_row_blocks(out, n * out * in, [&](std::int64_t begin, std::int64_t end) {
    sgemm(false, true, end - begin, n, in, pw + begin * in, in, px, in, 0.0f, pt + begin * n, n);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t o = begin; o < end; ++o) py[i * out + o] = pt[o * n + i] + (pb ? pb[o] : 0.0f);
  });
  saved_input_ = x;
  return y;
}

Tensor Linear::backward(const Tensor& dy) {
  if (!saved_input_.defined()) throw std::logic_error(describe() + ": backward called before forward");
  const std::int64_t n = saved_input_.dim(0), in = options_.in_features, out = options_.out_features;
  if (!dy.defined() || !(dy.shape() == Shape{n, out}))
    throw std::invalid_argument(describe() + ": backward expects dy " + Shape{n, out}.to_string() +
                                " for the input " + saved_input_.describe() + ", got " +
                                (dy.defined() ? dy.describe() : std::string("an undefined tensor")));
  check_parameters();
  const float* pdy = dy.data_f32();
  // dW[rows] (out, in) += dy[:, rows]^T (rows, N) x (N, in).
  const float* px = saved_input_.data_f32();
  float* pdw = weight_grad_.data_f32();
  for_row_blocks(out, n * out * in, [&](std::int64_t begin, std::int64_t end) {
    sgemm(true, false, end - begin, in, n, pdy + begin, out, px, in, 1.0f, pdw + begin * in, in);
  });
  if (options_.bias) {  // db (out) += sum over rows of dy; in double, the batch may be large.
    std::vector<double> sums(static_cast<std::size_t>(out), 0.0);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t o = 0; o < out; ++o) sums[o] += pdy[i * out + o];
    float* db = bias_grad_.data_f32();
    for (std::int64_t o = 0; o < out; ++o) db[o] += static_cast<float>(sums[o]);
  }
  if (!compute_input_grad_) return Tensor();
  // dx[examples] (N, in) = dy[examples] (N, out) W (out, in): every thread reads all of W.
  Tensor dx = Tensor::empty({n, in});
  const float* pw = weight_.data_f32();
  float* pdx = dx.data_f32();
  for_row_blocks(n, n * out * in, [&](std::int64_t begin, std::int64_t end) {
    sgemm(false, false, end - begin, in, out, pdy + begin * out, out, pw, in, 0.0f, pdx + begin * in, in);
  });
  return dx;
}

}  // namespace bnorm
