// bnorm as a contender, through the public entry points (argument checks and dispatch
// included, as a user calls them) with a workspace sized by batchnorm_workspace_bytes().
#include <algorithm>
#include <cstddef>

#include "bnorm/kernels/batchnorm.hpp"
#include "tools/bench/contender.hpp"

namespace bnorm::bench {
namespace {

class BnormContender final : public Contender {
 public:
  explicit BnormContender(OutputStores stores) : stores_(stores) {}
  const char* name() const override { return "bnorm"; }
  // The kernel, and the store policy when it is not the default.
  std::string detail() const override {
    if (stores_ == OutputStores::automatic) return kernel_;
    return kernel_ + " stores=" + std::string(output_stores_name(stores_));
  }

  void prepare(const Workload& workload, const BufferPool& pool,
               const ChannelParams& params) override {
    pool_ = &pool;
    params_ = &params;
    op_ = workload.op;
    problem_ = workload.problem();
    kernel_ = batchnorm_select(problem_).name;
    workspace_.assign(batchnorm_workspace_bytes(problem_), std::byte{0});
    const std::size_t c = static_cast<std::size_t>(problem_.channels);
    save_mean_.assign(c, 0.0f);
    save_invstd_.assign(c, 0.0f);
    running_mean_.assign(c, 0.0f);
    running_var_.assign(c, 1.0f);
    dgamma_.assign(c, 0.0f);  // accumulated (+=): zero before the validation run
    dbeta_.assign(c, 0.0f);
  }

  void run(int set) override {
    const BufferSet b = pool_->set(set);
    const ChannelParams& p = *params_;
    switch (op_) {
      case Op::forward_train:
        batchnorm_forward_train({.problem = problem_,
                                 .eps = p.eps,
                                 .x = b.x,
                                 .gamma = p.gamma.data(),
                                 .beta = p.beta.data(),
                                 .y = b.out,
                                 .save_mean = save_mean_.data(),
                                 .save_invstd = save_invstd_.data(),
                                 .running = {.mean = running_mean_.data(),
                                             .var = running_var_.data(),
                                             .factor = 0.1},
                                 .workspace = workspace_,
                                 .stores = stores_});
        break;
      case Op::forward_infer:
        batchnorm_forward_infer({.problem = problem_,
                                 .eps = p.eps,
                                 .x = b.x,
                                 .mean = p.mean.data(),
                                 .var = p.var.data(),
                                 .gamma = p.gamma.data(),
                                 .beta = p.beta.data(),
                                 .y = b.out,
                                 .stores = stores_});
        break;
      case Op::backward:
        batchnorm_backward({.problem = problem_,
                            .statistics = BatchNormStatistics::batch,
                            .x = b.x,
                            .dy = b.dy,
                            .mean = p.mean.data(),
                            .invstd = p.invstd.data(),
                            .gamma = p.gamma.data(),
                            .dx = b.out,
                            .dgamma = dgamma_.data(),
                            .dbeta = dbeta_.data(),
                            .workspace = workspace_,
                            .stores = stores_});
        break;
    }
  }

  ContenderOutputs outputs() override {
    ContenderOutputs o{.out = pool_->set(0).out};
    if (op_ == Op::forward_train) {
      o.mean = save_mean_;
      o.invstd = save_invstd_;
    }
    if (op_ == Op::backward) {
      o.dgamma = dgamma_;
      o.dbeta = dbeta_;
    }
    return o;
  }

 private:
  OutputStores stores_;
  const BufferPool* pool_ = nullptr;
  const ChannelParams* params_ = nullptr;
  Op op_ = Op::forward_train;
  BatchNormProblem problem_;
  std::string kernel_;
  std::vector<std::byte> workspace_;
  std::vector<float> save_mean_, save_invstd_;      // [C] forward_train outputs
  std::vector<float> running_mean_, running_var_;   // [C] updated by forward_train
  std::vector<float> dgamma_, dbeta_;               // [C] backward outputs (accumulated)
};

}  // namespace

std::unique_ptr<Contender> make_bnorm_contender(OutputStores stores) {
  return std::make_unique<BnormContender>(stores);
}

}  // namespace bnorm::bench
