// The benchmark's case table and case names.
#include "tools/bench/cases.hpp"

#include <stdexcept>

namespace bnorm::bench {

const char* to_string(Op op) {
  switch (op) {
    case Op::forward_train: return "forward_train";
    case Op::forward_infer: return "forward_infer";
    case Op::backward: return "backward";
  }
  return "?";
}

const char* to_string(Cache cache) { return cache == Cache::cold ? "cold" : "hot"; }

BatchNormProblem Workload::problem() const {
  return BatchNormProblem::from_shape(Shape(dims), layout);
}

std::string Workload::shape_name() const {
  std::string s;
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i) s += 'x';
    s += std::to_string(dims[i]);
  }
  return s;
}

std::string Workload::layout_name() const {
  if (dims.size() == 2) return "nc";
  return layout == Layout::channels_first ? "nchw" : "nhwc";
}

std::string Workload::problem_name() const {
  // n, c, then the spatial extents: l (3-d), h w (4-d), d h w (5-d).
  static const char* const spatial_keys[4][3] = {{}, {"l"}, {"h", "w"}, {"d", "h", "w"}};
  std::string s = "n" + std::to_string(dims[0]) + "c" + std::to_string(dims[1]);
  for (std::size_t i = 2; i < dims.size(); ++i)
    s += spatial_keys[dims.size() - 2][i - 2] + std::to_string(dims[i]);
  return s + ":" + layout_name();
}

std::string Workload::name() const { return problem_name() + ":" + to_string(op); }

std::int64_t Workload::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : dims) n *= d;
  return n;
}

std::size_t Workload::unavoidable_bytes() const {
  const std::size_t tensors = op == Op::backward ? 3 : 2;
  return tensors * static_cast<std::size_t>(numel()) * sizeof(float);
}

std::string BenchCase::name() const { return workload.name() + ":" + to_string(cache); }

std::vector<BenchCase> default_cases() {
  const std::vector<std::vector<std::int64_t>> shapes_4d = {
      {32, 64, 56, 56}, {32, 256, 14, 14}, {8, 512, 7, 7}, {256, 64, 8, 8}};
  const std::vector<std::vector<std::int64_t>> shapes_2d = {{1024, 1024}, {60, 100}};
  const Op ops[] = {Op::forward_train, Op::forward_infer, Op::backward};

  std::vector<BenchCase> cases;
  auto add = [&](const std::vector<std::int64_t>& dims, Layout layout) {
    for (Op op : ops)
      for (Cache cache : {Cache::cold, Cache::hot})
        cases.push_back({.workload = {.dims = dims, .layout = layout, .op = op}, .cache = cache});
  };
  for (const auto& dims : shapes_4d)
    for (Layout layout : {Layout::channels_first, Layout::channels_last}) add(dims, layout);
  for (const auto& dims : shapes_2d) add(dims, Layout::channels_first);
  return cases;
}

namespace {

// "n8c512s49:nchw:backward" against the case "n8c512h7w7:nchw:backward:cold": the problem
// part (up to the second ':') parses to the same problem and the rest starts the case's rest.
bool same_problem(const BenchCase& c, const std::string& filter) {
  const std::size_t colon = filter.find(':');
  const std::size_t end = colon == std::string::npos ? colon : filter.find(':', colon + 1);
  BatchNormProblem p;
  try {
    p = BatchNormProblem::parse(filter.substr(0, end));
  } catch (const std::invalid_argument&) {
    return false;
  }
  if (!(p == c.workload.problem())) return false;
  if (end == std::string::npos) return true;
  const std::string rest = std::string(to_string(c.workload.op)) + ":" + to_string(c.cache);
  return rest.rfind(filter.substr(end + 1), 0) == 0;
}

}  // namespace

std::vector<BenchCase> filter_cases(const std::vector<BenchCase>& cases,
                                    const std::vector<std::string>& filters) {
  if (filters.empty()) return cases;
  std::vector<BenchCase> kept;
  for (const BenchCase& c : cases) {
    const std::string name = c.name();
    // The names before the shared grammar ("8x512x7x7:nhwc:backward:cold") still match.
    const std::string old_name = c.workload.shape_name() + ":" + c.workload.layout_name() + ":" +
                                 to_string(c.workload.op) + ":" + to_string(c.cache);
    for (const std::string& f : filters)
      if (name.find(f) != std::string::npos || old_name.find(f) != std::string::npos ||
          same_problem(c, f)) {
        kept.push_back(c);
        break;
      }
  }
  return kept;
}

}  // namespace bnorm::bench
