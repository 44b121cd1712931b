// `bnorm bench`: for each workload (shape, layout, op), make the data, compute the reference
// results, validate every contender, then time the survivors interleaved with the
// speed-of-light probe, on cold data and on hot data. See docs/benchmarks.md.
#include "tools/bench/bench.hpp"

#include <omp.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_features.hpp"
#include "tools/bench/buffers.hpp"
#include "tools/bench/cases.hpp"
#include "tools/bench/contender.hpp"
#include "tools/bench/report.hpp"
#include "tools/bench/timing.hpp"
#include "tools/bench/validate.hpp"

namespace bnorm::bench {
namespace {

constexpr double eps = 1e-5;

// The batch-norm contenders built into this binary, bnorm first.
std::vector<std::unique_ptr<Contender>> make_batchnorm_contenders(OutputStores bnorm_stores) {
  std::vector<std::unique_ptr<Contender>> list;
  list.push_back(make_bnorm_contender(bnorm_stores));
#ifdef BNORM_HAVE_ONEDNN
  list.push_back(make_onednn_contender());
#endif
#ifdef BNORM_HAVE_LIBTORCH
  list.push_back(make_libtorch_contender());
#endif
  return list;
}

RunInfo describe_run(OutputStores bnorm_stores) {
  RunInfo info{.threads = omp_get_max_threads(),
               .l3_bytes = static_cast<std::size_t>(cpu::cpu_features().llc_bytes),
               .bnorm_stores = bnorm_stores};
  info.probe_isa = make_probe_contender()->detail();
  for (const std::unique_ptr<Contender>& c : make_batchnorm_contenders(bnorm_stores))
    if (std::string(c->name()) != "bnorm")
      info.peers.push_back(std::string(c->name()) + " " + c->detail());
#ifndef BNORM_HAVE_ONEDNN
  info.absent.emplace_back("onednn");
#endif
#ifndef BNORM_HAVE_LIBTORCH
  info.absent.emplace_back("libtorch");
#endif
  return info;
}

// Runs the cases of one workload (its cold and/or hot case); appends one row per
// batch-norm contender and case. Returns the number of contenders that failed validation.
int run_workload(const Workload& workload, bool cold, bool hot, const RunInfo& info,
                 const TimingPolicy& policy, std::vector<ResultRow>& rows) {
  const int cold_sets = cold ? cold_set_count(workload, info.l3_bytes) : 1;
  BufferPool pool(workload, cold_sets);
  ChannelParams params = make_channel_params(workload.dims[1], eps);
  const Expected expected = compute_reference(workload, pool, params);

  std::unique_ptr<Contender> probe = make_probe_contender();
  probe->prepare(workload, pool, params);
  std::vector<Contender*> timed = {probe.get()};
  // The two-pass probe (ops that read their inputs twice), timed right after the probe.
  std::unique_ptr<Contender> two_pass;
  if (workload.op != Op::forward_infer) {
    two_pass = make_two_pass_probe_contender(workload);
    two_pass->prepare(workload, pool, params);
    timed.push_back(two_pass.get());
  }
  const std::size_t first_batchnorm = timed.size();
  std::vector<std::unique_ptr<Contender>> contenders = make_batchnorm_contenders(info.bnorm_stores);

  // Validate each before anything is timed; failures are reported, not timed.
  std::vector<ResultRow> workload_rows;
  int failures = 0;
  for (const std::unique_ptr<Contender>& c : contenders) {
    ResultRow row{.impl = c->name()};
    try {
      c->prepare(workload, pool, params);
      c->run(0);
      const Verdict verdict = validate(workload, expected, c->outputs());
      row.ok = verdict.ok;
      row.max_error = verdict.max_error;
      row.error = verdict.message;
    } catch (const std::exception& e) {
      row.ok = false;
      row.error = std::string("threw: ") + e.what();
    }
    row.detail = c->detail();
    if (row.ok)
      timed.push_back(c.get());
    else
      ++failures;
    workload_rows.push_back(row);
  }

  for (Cache cache : {Cache::cold, Cache::hot}) {
    if ((cache == Cache::cold && !cold) || (cache == Cache::hot && !hot)) continue;
    const BenchCase bench_case{.workload = workload, .cache = cache};
    const int sets = cache == Cache::cold ? pool.sets() : 1;
    std::fprintf(stderr, "bnorm bench: %-40s %d set%s, %d contenders\n", bench_case.name().c_str(),
                 sets, sets == 1 ? "" : "s", static_cast<int>(timed.size()));
    const std::vector<Measurement> m = time_interleaved(timed, pool, sets, policy);
    const double sol_us = m[0].median() * 1e6;
    for (ResultRow row : workload_rows) {
      row.bench_case = bench_case;
      row.sol_us = sol_us;
      row.sol_min_us = m[0].min() * 1e6;
      row.sets = sets;
      if (two_pass) row.two_pass_us = m[1].median() * 1e6;
      for (std::size_t i = first_batchnorm; i < timed.size(); ++i)
        if (row.ok && row.impl == timed[i]->name()) {
          row.median_us = m[i].median() * 1e6;
          row.min_us = m[i].min() * 1e6;
          row.repetitions = static_cast<int>(m[i].seconds.size());
        }
      rows.push_back(row);
    }
  }
  return failures;
}

}  // namespace

int run(const BenchOptions& options) {
  if (options.threads > 0) omp_set_num_threads(options.threads);
  const std::vector<BenchCase> cases = filter_cases(default_cases(), options.filters);
  if (cases.empty()) throw std::invalid_argument("bench: no case matches the --filter given");
  if (options.list) {
    for (const BenchCase& c : cases) std::printf("%s\n", c.name().c_str());
    return 0;
  }

  const RunInfo info = describe_run(options.stores);
  const TimingPolicy policy = timing_policy(options);
  std::vector<ResultRow> rows;
  int failures = 0;
  // Cases of one workload are adjacent in the table: run them together on one pool.
  for (std::size_t i = 0; i < cases.size();) {
    const Workload& workload = cases[i].workload;
    bool cold = false, hot = false;
    for (; i < cases.size() && cases[i].workload.name() == workload.name(); ++i)
      (cases[i].cache == Cache::cold ? cold : hot) = true;
    failures += run_workload(workload, cold, hot, info, policy, rows);
  }

  if (options.format == "json")
    print_json(stdout, info, rows);
  else
    print_table(stdout, info, rows);
  if (failures) {
    std::fprintf(stderr, "bnorm bench: %d implementation%s failed validation (see the report)\n",
                 failures, failures == 1 ? "" : "s");
    return 2;
  }
  return 0;
}

}  // namespace bnorm::bench
