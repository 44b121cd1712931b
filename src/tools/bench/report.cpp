// The table and the JSON of a benchmark run.
#include "tools/bench/report.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace bnorm::bench {
namespace {

const char* const impl_order[] = {"bnorm", "onednn", "libtorch"};

const ResultRow* find_row(const std::vector<ResultRow>& rows, std::size_t begin, std::size_t end,
                          const std::string& impl) {
  for (std::size_t i = begin; i < end; ++i)
    if (rows[i].impl == impl) return &rows[i];
  return nullptr;
}

// Three decimals are more than the measurements can tell.
double rounded(double v) { return std::round(v * 1000.0) / 1000.0; }

}  // namespace

double gigabytes_per_second(const Workload& workload, double us) {
  return us > 0 ? static_cast<double>(workload.unavoidable_bytes()) / (us * 1e3) : 0.0;
}

void print_table(std::FILE* out, const RunInfo& info, const std::vector<ResultRow>& rows) {
  std::fprintf(out, "bnorm bench: %d threads; L3 %zu MiB, cold data rotates through buffer sets so that >= %zu MiB is touched between uses of one set\n",
               info.threads, info.l3_bytes >> 20, (4 * info.l3_bytes) >> 20);
  std::string peers, absent;
  for (const std::string& p : info.peers) peers += (peers.empty() ? "" : ", ") + p;
  for (const std::string& a : info.absent) absent += (absent.empty() ? "" : ", ") + a;
  std::fprintf(out, "peers: %s; absent (not built in): %s; bnorm output stores: %s\n",
               peers.empty() ? "none" : peers.c_str(), absent.empty() ? "none" : absent.c_str(),
               std::string(output_stores_name(info.bnorm_stores)).c_str());
  std::fprintf(out, "SOL = speed-of-light probe (%s loop moving only the unavoidable bytes); us = median microseconds;\n"
                    "%%SOL = SOL us / impl us; vs peer = fastest peer us / bnorm us (>1: bnorm faster); GB/s = unavoidable bytes / median\n"
                    "2P us = the two-pass probe (forward_train and backward: inputs read twice, the output written by the second pass,\n"
                    "        no per-channel work; nchw slice by slice, nhwc and nc each thread's whole share, a barrier,\n"
                    "        then again); %%2P = 2P us / bnorm us\n\n",
               info.probe_isa.c_str());

  std::vector<std::string> impls;
  for (const char* impl : impl_order)
    if (std::any_of(rows.begin(), rows.end(), [&](const ResultRow& r) { return r.impl == impl; }))
      impls.emplace_back(impl);

  std::fprintf(out, "%-38s %10s", "case", "SOL us");
  for (const std::string& impl : impls) std::fprintf(out, " %11s %5s", (impl + " us").c_str(), "%SOL");
  std::fprintf(out, " %8s %8s %8s %8s %5s  %s\n", "vs peer", "GB/s", "SOL GB/s", "2P us", "%2P",
               "bnorm kernel");

  std::vector<std::string> errors;
  for (std::size_t begin = 0; begin < rows.size();) {
    std::size_t end = begin;
    const std::string name = rows[begin].bench_case.name();
    while (end < rows.size() && rows[end].bench_case.name() == name) ++end;
    const Workload& w = rows[begin].bench_case.workload;
    const double sol = rows[begin].sol_us;
    std::fprintf(out, "%-38s %10.1f", name.c_str(), sol);
    for (const std::string& impl : impls) {
      const ResultRow* r = find_row(rows, begin, end, impl);
      if (!r)
        std::fprintf(out, " %11s %5s", "-", "");
      else if (!r->ok)
        std::fprintf(out, " %11s %5s", "FAILED", "");
      else
        std::fprintf(out, " %11.1f %4.0f%%", r->median_us, 100.0 * sol / r->median_us);
      if (r && !r->ok) errors.push_back(name + " " + impl + ": " + r->error);
    }
    const ResultRow* bnorm = find_row(rows, begin, end, "bnorm");
    double best_peer = 0.0;
    for (std::size_t i = begin; i < end; ++i)
      if (rows[i].impl != "bnorm" && rows[i].ok && (best_peer == 0.0 || rows[i].median_us < best_peer))
        best_peer = rows[i].median_us;
    if (bnorm && bnorm->ok && best_peer > 0)
      std::fprintf(out, " %7.2fx", best_peer / bnorm->median_us);
    else
      std::fprintf(out, " %8s", "-");
    if (bnorm && bnorm->ok)
      std::fprintf(out, " %8.1f", gigabytes_per_second(w, bnorm->median_us));
    else
      std::fprintf(out, " %8s", "-");
    std::fprintf(out, " %8.1f", gigabytes_per_second(w, sol));
    const double two_pass = rows[begin].two_pass_us;
    if (two_pass > 0)
      std::fprintf(out, " %8.1f", two_pass);
    else
      std::fprintf(out, " %8s", "-");
    if (two_pass > 0 && bnorm && bnorm->ok)
      std::fprintf(out, " %4.0f%%", 100.0 * two_pass / bnorm->median_us);
    else
      std::fprintf(out, " %5s", "-");
    std::fprintf(out, "  %s\n", bnorm ? bnorm->detail.c_str() : "");
    begin = end;
  }
  if (!errors.empty()) {
    std::fprintf(out, "\nFAILED validation (not timed):\n");
    for (const std::string& e : errors) std::fprintf(out, "  %s\n", e.c_str());
  }
}

void print_json(std::FILE* out, const RunInfo& info, const std::vector<ResultRow>& rows) {
  nlohmann::ordered_json array = nlohmann::ordered_json::array();
  for (const ResultRow& r : rows) {
    const Workload& w = r.bench_case.workload;
    nlohmann::ordered_json o;
    o["shape"] = w.shape_name();
    o["layout"] = w.layout_name();
    o["op"] = to_string(w.op);
    o["cache"] = to_string(r.bench_case.cache);
    o["impl"] = r.impl;
    if (r.ok)
      o["median_us"] = rounded(r.median_us);
    else
      o["median_us"] = nullptr;
    o["sol_us"] = rounded(r.sol_us);
    // Extras.
    if (r.ok) {
      o["gbps"] = rounded(gigabytes_per_second(w, r.median_us));
      o["min_us"] = rounded(r.min_us);
    }
    o["sol_min_us"] = rounded(r.sol_min_us);
    o["sol_gbps"] = rounded(gigabytes_per_second(w, r.sol_us));
    if (r.two_pass_us > 0) o["two_pass_us"] = rounded(r.two_pass_us);
    o["repetitions"] = r.repetitions;
    o["sets"] = r.sets;
    o["threads"] = info.threads;
    o["max_rel_error"] = r.max_error;
    o["detail"] = r.detail;
    if (!r.ok) o["error"] = r.error;
    array.push_back(std::move(o));
  }
  std::fprintf(out, "%s\n", array.dump(2).c_str());
}

}  // namespace bnorm::bench
