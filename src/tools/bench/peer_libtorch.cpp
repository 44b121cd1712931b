// libtorch as a peer: at::native_batch_norm (training with running statistics, momentum 0.1;
// inference with running statistics) and at::native_batch_norm_backward (all three
// gradients), the CPU kernels behind torch.nn.BatchNorm. nhwc data is a channels_last view,
// which sends ATen down its channels-last kernels. at::set_num_threads gets the same
// thread count as everyone else.
//
// The input tensors are views (at::from_blob) of the benchmark's buffer sets, made once in
// prepare(). The outputs cannot be: on the CPU, libtorch 1.13 has no out= kernel for these
// ops (native_batch_norm.out exists for CUDA only, native_batch_norm_backward.out copies),
// so every call allocates its outputs, as it does for PyTorch users; glibc serves them from
// freed memory after the first call, and that cost is part of libtorch's time. That block
// was written by the previous call and would still be in cache; in cold measurements it is
// flushed after each call (flush_own_outputs), as everyone else's output is in DRAM.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <omp.h>

#include <cstring>
#include <tuple>

#include "tools/bench/contender.hpp"

namespace bnorm::bench {
namespace {

at::Tensor copy_of(const std::vector<float>& values) {
  at::Tensor t = at::empty({static_cast<std::int64_t>(values.size())}, at::kFloat);
  std::memcpy(t.data_ptr<float>(), values.data(), values.size() * sizeof(float));
  return t;
}

std::vector<float> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  const float* p = c.data_ptr<float>();
  return std::vector<float>(p, p + c.numel());
}

class LibTorchContender final : public Contender {
 public:
  const char* name() const override { return "libtorch"; }
  std::string detail() const override { return "1.13"; }

  void prepare(const Workload& workload, const BufferPool& pool,
               const ChannelParams& params) override {
    at::set_num_threads(omp_get_max_threads());
    op_ = workload.op;
    eps_ = params.eps;
    channels_last_ = workload.dims.size() == 4 && workload.layout == Layout::channels_last;
    const std::vector<std::int64_t>& d = workload.dims;
    std::vector<std::int64_t> strides(d.size(), 1);
    if (channels_last_) {  // N, C, H, W logical; N, H, W, C in memory
      strides = {d[1] * d[2] * d[3], 1, d[3] * d[1], d[1]};
    } else {
      for (std::size_t i = d.size() - 1; i-- > 0;) strides[i] = strides[i + 1] * d[i + 1];
    }
    const at::TensorOptions options = at::TensorOptions().dtype(at::kFloat);
    x_.clear();
    dy_.clear();
    for (int s = 0; s < pool.sets(); ++s) {
      const BufferSet b = pool.set(s);
      x_.push_back(at::from_blob(b.x, d, strides, options));
      if (b.dy) dy_.push_back(at::from_blob(b.dy, d, strides, options));
    }
    weight_ = copy_of(params.gamma);
    bias_ = copy_of(params.beta);
    mean_ = copy_of(params.mean);
    var_ = copy_of(params.var);
    invstd_ = copy_of(params.invstd);
    running_mean_ = at::zeros({d[1]}, options);
    running_var_ = at::ones({d[1]}, options);
    result_ = {};
  }

  void run(int set) override {
    const at::Tensor& x = x_[static_cast<std::size_t>(set)];
    switch (op_) {
      case Op::forward_train:
        result_ = at::native_batch_norm(x, weight_, bias_, running_mean_, running_var_,
                                        /*training=*/true, /*momentum=*/0.1, eps_);
        break;
      case Op::forward_infer:
        result_ = at::native_batch_norm(x, weight_, bias_, mean_, var_, /*training=*/false,
                                        /*momentum=*/0.1, eps_);
        break;
      case Op::backward:
        result_ = at::native_batch_norm_backward(dy_[static_cast<std::size_t>(set)], x, weight_,
                                                 running_mean_, running_var_, mean_, invstd_,
                                                 /*train=*/true, eps_, {true, true, true});
        break;
    }
  }

  void flush_own_outputs() override {
    const at::Tensor& out = std::get<0>(result_);
    flush_from_caches(out.data_ptr(), static_cast<std::size_t>(out.nbytes()));
  }

  ContenderOutputs outputs() override {
    // y / dx in the workload's layout (a no-op unless ATen chose another one).
    out_ = std::get<0>(result_).contiguous(channels_last_ ? at::MemoryFormat::ChannelsLast
                                                          : at::MemoryFormat::Contiguous);
    ContenderOutputs o{.out = out_.data_ptr<float>()};
    if (op_ == Op::forward_train) {
      o.mean = to_vector(std::get<1>(result_));
      o.invstd = to_vector(std::get<2>(result_));
    }
    if (op_ == Op::backward) {
      o.dgamma = to_vector(std::get<1>(result_));
      o.dbeta = to_vector(std::get<2>(result_));
    }
    return o;
  }

 private:
  Op op_ = Op::forward_train;
  double eps_ = 1e-5;
  bool channels_last_ = false;
  std::vector<at::Tensor> x_, dy_;  // views of every buffer set
  at::Tensor weight_, bias_, mean_, var_, invstd_, running_mean_, running_var_;  // [C]
  std::tuple<at::Tensor, at::Tensor, at::Tensor> result_;  // the last call's outputs
  at::Tensor out_;
};

}  // namespace

std::unique_ptr<Contender> make_libtorch_contender() {
  return std::make_unique<LibTorchContender>();
}

}  // namespace bnorm::bench
