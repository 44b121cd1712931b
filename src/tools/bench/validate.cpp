// Reference results and the comparison that every contender passes before it is timed.
#include "tools/bench/validate.hpp"

#include <cmath>
#include <cstddef>
#include <sstream>

#include "bnorm/kernels/batchnorm.hpp"

namespace bnorm::bench {
namespace {

// Checks one output array; updates the verdict (keeps the first failure's message).
void check(const char* what, const float* got, const float* want, std::size_t n,
           double tolerance, Verdict& verdict) {
  if (n == 0) return;
  if (!got) {
    verdict.ok = false;
    if (verdict.message.empty()) verdict.message = std::string(what) + " was not produced";
    return;
  }
  double sum_squares = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum_squares += static_cast<double>(want[i]) * want[i];
  const double rms = std::sqrt(sum_squares / static_cast<double>(n));
  double worst = 0.0;
  std::size_t worst_index = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double scale = std::max(std::fabs(static_cast<double>(want[i])), rms);
    double error = std::fabs(static_cast<double>(got[i]) - want[i]) / (scale > 0 ? scale : 1.0);
    if (!std::isfinite(got[i])) error = INFINITY;
    if (error > worst) {
      worst = error;
      worst_index = i;
    }
  }
  verdict.max_error = std::max(verdict.max_error, worst);
  if (!(worst <= tolerance)) {
    verdict.ok = false;
    if (verdict.message.empty()) {
      std::ostringstream m;
      m << what << ": relative error " << worst << " > " << tolerance << " at index "
        << worst_index << " (got " << got[worst_index] << ", expected " << want[worst_index]
        << ")";
      verdict.message = m.str();
    }
  }
}

void check_vector(const char* what, const std::vector<float>& got, const std::vector<float>& want,
                  double tolerance, Verdict& verdict) {
  if (want.empty()) return;
  if (got.size() != want.size()) {
    verdict.ok = false;
    if (verdict.message.empty())
      verdict.message = std::string(what) + ": " + std::to_string(got.size()) +
                        " values, expected " + std::to_string(want.size());
    return;
  }
  check(what, got.data(), want.data(), want.size(), tolerance, verdict);
}

}  // namespace

Expected compute_reference(const Workload& workload, const BufferPool& pool,
                           ChannelParams& params) {
  const BatchNormImpl& reference = batchnorm_impl_by_name("reference");
  const BatchNormProblem problem = workload.problem();
  const std::size_t c = static_cast<std::size_t>(problem.channels);
  std::vector<std::byte> workspace(reference.workspace_bytes(problem));
  const BufferSet set = pool.set(0);

  // Batch statistics of x (and, for forward_train, the expected y).
  Expected e{.out = FloatBuffer(static_cast<std::size_t>(workload.numel()))};
  std::vector<float> save_mean(c), save_invstd(c);
  reference.forward_train({.problem = problem,
                           .eps = params.eps,
                           .x = set.x,
                           .gamma = params.gamma.data(),
                           .beta = params.beta.data(),
                           .y = e.out.data(),
                           .save_mean = save_mean.data(),
                           .save_invstd = save_invstd.data(),
                           .workspace = workspace});
  params.mean = save_mean;
  params.invstd = save_invstd;
  for (std::size_t i = 0; i < c; ++i) {
    const double invstd = save_invstd[i];
    params.var[i] = static_cast<float>(1.0 / (invstd * invstd) - params.eps);
  }

  switch (workload.op) {
    case Op::forward_train:
      e.mean = save_mean;
      e.invstd = save_invstd;
      break;
    case Op::forward_infer:
      reference.forward_infer({.problem = problem,
                               .eps = params.eps,
                               .x = set.x,
                               .mean = params.mean.data(),
                               .var = params.var.data(),
                               .gamma = params.gamma.data(),
                               .beta = params.beta.data(),
                               .y = e.out.data()});
      break;
    case Op::backward:
      e.dgamma.assign(c, 0.0f);
      e.dbeta.assign(c, 0.0f);
      reference.backward({.problem = problem,
                          .statistics = BatchNormStatistics::batch,
                          .x = set.x,
                          .dy = set.dy,
                          .mean = params.mean.data(),
                          .invstd = params.invstd.data(),
                          .gamma = params.gamma.data(),
                          .dx = e.out.data(),
                          .dgamma = e.dgamma.data(),
                          .dbeta = e.dbeta.data(),
                          .workspace = workspace});
      break;
  }
  return e;
}

Verdict validate(const Workload& workload, const Expected& expected, const ContenderOutputs& got,
                 double tolerance) {
  Verdict verdict;
  const char* out_name = workload.op == Op::backward ? "dx" : "y";
  check(out_name, got.out, expected.out.data(), expected.out.size(), tolerance, verdict);
  check_vector("mean", got.mean, expected.mean, tolerance, verdict);
  check_vector("invstd", got.invstd, expected.invstd, tolerance, verdict);
  check_vector("dgamma", got.dgamma, expected.dgamma, tolerance, verdict);
  check_vector("dbeta", got.dbeta, expected.dbeta, tolerance, verdict);
  return verdict;
}

}  // namespace bnorm::bench
