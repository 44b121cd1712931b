// Linear through oneDNN's sgemm (row-major, the C API's BLAS-like entry point): three
// products, each one call, plus the bias as a broadcast before / a column sum after.
#include "bnorm/layers/linear.hpp"

#include <oneapi/dnnl/dnnl.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace bnorm {
namespace {

// C (M, N) = alpha * op(A) op(B) + beta * C, all row-major and contiguous.
void sgemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k,
           const float* a, const float* b, float beta, float* c) {
  const std::int64_t lda = transpose_a ? m : k;
  const std::int64_t ldb = transpose_b ? k : n;
  const dnnl_status_t status = dnnl_sgemm(transpose_a ? 'T' : 'N', transpose_b ? 'T' : 'N', m, n, k,
                                          1.0f, a, lda, b, ldb, beta, c, n);
  if (status != dnnl_success)
    throw std::runtime_error("linear: dnnl_sgemm failed (status " + std::to_string(status) + ") for M=" +
                             std::to_string(m) + " N=" + std::to_string(n) + " K=" + std::to_string(k));
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
  // y = b (broadcast over rows), then y += x W^T.
  float beta = 0.0f;
  if (options_.bias) {
    const float* b = bias_.data_f32();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t o = 0; o < out; ++o) py[i * out + o] = b[o];
    beta = 1.0f;
  }
  sgemm(false, true, n, out, in, x.data_f32(), weight_.data_f32(), beta, py);
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
  // dW (out, in) += dy^T (out, N) x (N, in).
  sgemm(true, false, out, in, n, pdy, saved_input_.data_f32(), 1.0f, weight_grad_.data_f32());
  if (options_.bias) {  // db (out) += sum over rows of dy; in double, the batch may be large.
    std::vector<double> sums(static_cast<std::size_t>(out), 0.0);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t o = 0; o < out; ++o) sums[o] += pdy[i * out + o];
    float* db = bias_grad_.data_f32();
    for (std::int64_t o = 0; o < out; ++o) db[o] += static_cast<float>(sums[o]);
  }
  if (!compute_input_grad_) return Tensor();
  // dx (N, in) = dy (N, out) W (out, in).
  Tensor dx = Tensor::empty({n, in});
  sgemm(false, false, n, in, out, pdy, weight_.data_f32(), 0.0f, dx.data_f32());
  return dx;
}

}  // namespace bnorm
