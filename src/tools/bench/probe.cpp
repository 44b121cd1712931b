// The speed-of-light probe and the two-pass probe as contenders: the loops of
// probe_loops.hpp for the workload's op, on the same buffer sets the batch-norm
// implementations use.
#include "tools/bench/contender.hpp"
#include "tools/bench/probe_loops.hpp"

namespace bnorm::bench {
namespace detail {
void probe_forward_avx2(const float* x, float* y, std::int64_t n);
void probe_backward_avx2(const float* x, const float* dy, float* dx, std::int64_t n);
template <bool kWhole>  // instantiated in probe_avx2.cpp
void probe_two_pass_forward_avx2(const float* x, float* y, std::int64_t n);
template <bool kWhole>
void probe_two_pass_backward_avx2(const float* x, const float* dy, float* dx, std::int64_t n);
}  // namespace detail

namespace {

using ForwardLoop = void (*)(const float*, float*, std::int64_t);
using BackwardLoop = void (*)(const float*, const float*, float*, std::int64_t);

struct ProbeLoops {
  ForwardLoop forward;
  BackwardLoop backward;
};

class ProbeContender final : public Contender {
 public:
  ProbeContender(const char* name, ProbeLoops baseline, ProbeLoops avx2)
      : name_(name), loops_(avx2_ ? avx2 : baseline) {}
  const char* name() const override { return name_; }
  bool computes_batchnorm() const override { return false; }
  std::string detail() const override { return std::string(avx2_ ? "avx2" : "baseline"); }

  void prepare(const Workload& workload, const BufferPool& pool, const ChannelParams&) override {
    pool_ = &pool;
    backward_ = workload.op == Op::backward;
    numel_ = workload.numel();
  }

  void run(int set) override {
    const BufferSet b = pool_->set(set);
    if (backward_)
      loops_.backward(b.x, b.dy, b.out, numel_);
    else
      loops_.forward(b.x, b.out, numel_);
  }

  ContenderOutputs outputs() override { return {.out = pool_->set(0).out}; }

 private:
  const bool avx2_ = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const char* name_;
  ProbeLoops loops_;
  const BufferPool* pool_ = nullptr;
  bool backward_ = false;
  std::int64_t numel_ = 0;
};

}  // namespace

std::unique_ptr<Contender> make_probe_contender() {
  return std::make_unique<ProbeContender>(
      "probe", ProbeLoops{probe_forward_loop, probe_backward_loop},
      ProbeLoops{detail::probe_forward_avx2, detail::probe_backward_avx2});
}

namespace {
template <bool kWhole>
std::unique_ptr<Contender> make_two_pass_probe() {
  return std::make_unique<ProbeContender>(
      "two-pass probe", ProbeLoops{probe_two_pass_forward_loop<kWhole>, probe_two_pass_backward_loop<kWhole>},
      ProbeLoops{detail::probe_two_pass_forward_avx2<kWhole>, detail::probe_two_pass_backward_avx2<kWhole>});
}
}  // namespace

std::unique_ptr<Contender> make_two_pass_probe_contender(const Workload& workload) {
  // Every row holds every channel: channels_last, and (N, C) in either layout.
  const bool whole = workload.layout == Layout::channels_last || workload.problem().spatial == 1;
  return whole ? make_two_pass_probe<true>() : make_two_pass_probe<false>();
}

}  // namespace bnorm::bench
