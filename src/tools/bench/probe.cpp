// The speed-of-light probe as a contender: the minimal-traffic loop for the workload's op,
// on the same buffer sets the batch-norm implementations use.
#include "tools/bench/contender.hpp"
#include "tools/bench/probe_loops.hpp"

namespace bnorm::bench {
namespace detail {
void probe_forward_avx2(const float* x, float* y, std::int64_t n);
void probe_backward_avx2(const float* x, const float* dy, float* dx, std::int64_t n);
}  // namespace detail

namespace {

class ProbeContender final : public Contender {
 public:
  const char* name() const override { return "probe"; }
  bool computes_batchnorm() const override { return false; }
  std::string detail() const override { return std::string(avx2_ ? "avx2" : "baseline"); }

  void prepare(const Workload& workload, const BufferPool& pool, const ChannelParams&) override {
    pool_ = &pool;
    backward_ = workload.op == Op::backward;
    numel_ = workload.numel();
  }

  void run(int set) override {
    const BufferSet b = pool_->set(set);
    if (backward_) {
      if (avx2_)
        detail::probe_backward_avx2(b.x, b.dy, b.out, numel_);
      else
        probe_backward_loop(b.x, b.dy, b.out, numel_);
    } else {
      if (avx2_)
        detail::probe_forward_avx2(b.x, b.out, numel_);
      else
        probe_forward_loop(b.x, b.out, numel_);
    }
  }

  ContenderOutputs outputs() override { return {.out = pool_->set(0).out}; }

 private:
  const bool avx2_ = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const BufferPool* pool_ = nullptr;
  bool backward_ = false;
  std::int64_t numel_ = 0;
};

}  // namespace

std::unique_ptr<Contender> make_probe_contender() { return std::make_unique<ProbeContender>(); }

}  // namespace bnorm::bench
