// oneDNN as a peer: batch_normalization_forward (training: use_scale | use_shift; inference:
// also use_global_stats) and batch_normalization_backward (prop_kind::backward, all three
// gradients), on the nchw / nhwc / nc memory formats, with the same OpenMP threads.
//
// Setup (primitives, one argument list per buffer set, a user-managed scratchpad) happens in
// prepare(); the timed call is one dnnl_primitive_execute() on a prebuilt argument array, so
// the C++ wrapper's per-call std::unordered_map is not timed either.
//
// Conventions differ from bnorm's, converted here and only for validation: oneDNN keeps the
// (biased) variance where bnorm keeps invstd, and writes diff_scale/diff_shift (=) where
// bnorm accumulates (+=). oneDNN does not update running statistics; bnorm and libtorch do
// (C values per call, negligible).
#include <cmath>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>

#include "tools/bench/contender.hpp"

namespace bnorm::bench {
namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;

class OneDnnContender final : public Contender {
 public:
  const char* name() const override { return "onednn"; }
  std::string detail() const override {
    const dnnl_version_t* v = dnnl_version();
    return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
           std::to_string(v->patch) + (kernel_.empty() ? "" : " " + kernel_);
  }

  void prepare(const Workload& workload, const BufferPool& pool,
               const ChannelParams& params) override {
    op_ = workload.op;
    eps_ = params.eps;
    pool_ = &pool;
    const std::int64_t c = workload.dims[1];
    memory::dims dims(workload.dims.begin(), workload.dims.end());
    const tag data_tag = workload.dims.size() == 2 ? tag::nc
                         : workload.layout == Layout::channels_first ? tag::nchw
                                                                     : tag::nhwc;
    const memory::desc data_md(dims, memory::data_type::f32, data_tag);
    const memory::desc channel_md({c}, memory::data_type::f32, tag::x);

    scale_ = params.gamma;
    shift_ = params.beta;
    mean_ = params.mean;
    variance_ = params.var;
    diff_scale_.assign(static_cast<std::size_t>(c), 0.0f);
    diff_shift_.assign(static_cast<std::size_t>(c), 0.0f);

    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    const dnnl::batch_normalization_forward::primitive_desc train_pd(
        {dnnl::prop_kind::forward_training, data_md, static_cast<float>(eps_), flags}, attr, engine_);
    memory::desc scratchpad_md;
    switch (op_) {
      case Op::forward_train:
        primitive_ = dnnl::batch_normalization_forward(train_pd);
        scratchpad_md = train_pd.scratchpad_desc();
        kernel_ = train_pd.impl_info_str();
        break;
      case Op::forward_infer: {
        const dnnl::batch_normalization_forward::primitive_desc pd(
            {dnnl::prop_kind::forward_inference, data_md, static_cast<float>(eps_),
             flags | dnnl::normalization_flags::use_global_stats},
            attr, engine_);
        primitive_ = dnnl::batch_normalization_forward(pd);
        scratchpad_md = pd.scratchpad_desc();
        kernel_ = pd.impl_info_str();
        break;
      }
      case Op::backward: {
        const dnnl::batch_normalization_backward::primitive_desc pd(
            {dnnl::prop_kind::backward, data_md, data_md, static_cast<float>(eps_), flags}, attr,
            engine_, train_pd);
        primitive_ = dnnl::batch_normalization_backward(pd);
        scratchpad_md = pd.scratchpad_desc();
        kernel_ = pd.impl_info_str();
        break;
      }
    }

    // Memory objects: per-channel ones shared, big ones per buffer set (user pointers).
    memories_.clear();
    auto wrap = [&](const memory::desc& md, void* data) {
      memories_.emplace_back(md, engine_, data);
      return memories_.back().get();
    };
    memories_.reserve(8 + 3 * static_cast<std::size_t>(pool.sets()));
    scratchpad_ = memory(scratchpad_md, engine_);  // allocated by oneDNN, once
    const dnnl_memory_t scale = wrap(channel_md, scale_.data());
    const dnnl_memory_t shift = wrap(channel_md, shift_.data());
    const dnnl_memory_t mean = wrap(channel_md, mean_.data());
    const dnnl_memory_t variance = wrap(channel_md, variance_.data());
    const dnnl_memory_t diff_scale = wrap(channel_md, diff_scale_.data());
    const dnnl_memory_t diff_shift = wrap(channel_md, diff_shift_.data());
    args_.assign(static_cast<std::size_t>(pool.sets()), {});
    for (int s = 0; s < pool.sets(); ++s) {
      const BufferSet b = pool.set(s);
      std::vector<dnnl_exec_arg_t>& a = args_[static_cast<std::size_t>(s)];
      a = {{DNNL_ARG_SRC, wrap(data_md, b.x)},
           {DNNL_ARG_SCALE, scale},
           {DNNL_ARG_SHIFT, shift},  // oneDNN 2.6's backward asks for it too, though unused
           {DNNL_ARG_MEAN, mean},
           {DNNL_ARG_VARIANCE, variance},
           {DNNL_ARG_SCRATCHPAD, scratchpad_.get()}};
      if (op_ == Op::backward) {
        a.push_back({DNNL_ARG_DIFF_DST, wrap(data_md, b.dy)});
        a.push_back({DNNL_ARG_DIFF_SRC, wrap(data_md, b.out)});
        a.push_back({DNNL_ARG_DIFF_SCALE, diff_scale});
        a.push_back({DNNL_ARG_DIFF_SHIFT, diff_shift});
      } else {
        a.push_back({DNNL_ARG_DST, wrap(data_md, b.out)});
      }
    }
  }

  void run(int set) override {
    const std::vector<dnnl_exec_arg_t>& a = args_[static_cast<std::size_t>(set)];
    dnnl_status_t status = dnnl_primitive_execute(primitive_.get(), stream_.get(),
                                                  static_cast<int>(a.size()), a.data());
    if (status == dnnl_success) status = dnnl_stream_wait(stream_.get());
    if (status != dnnl_success)
      throw std::runtime_error("oneDNN batch norm failed with status " + std::to_string(status));
  }

  ContenderOutputs outputs() override {
    ContenderOutputs o{.out = pool_->set(0).out};
    if (op_ == Op::forward_train) {
      o.mean = mean_;
      for (float v : variance_) o.invstd.push_back(static_cast<float>(1.0 / std::sqrt(double{v} + eps_)));
    }
    if (op_ == Op::backward) {
      o.dgamma = diff_scale_;
      o.dbeta = diff_shift_;
    }
    return o;
  }

 private:
  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  dnnl::primitive primitive_;
  std::string kernel_;
  Op op_ = Op::forward_train;
  double eps_ = 1e-5;
  const BufferPool* pool_ = nullptr;
  std::vector<float> scale_, shift_, mean_, variance_, diff_scale_, diff_shift_;  // [C]
  std::vector<memory> memories_;
  memory scratchpad_;
  std::vector<std::vector<dnnl_exec_arg_t>> args_;  // per buffer set
};

}  // namespace

std::unique_ptr<Contender> make_onednn_contender() { return std::make_unique<OneDnnContender>(); }

}  // namespace bnorm::bench
