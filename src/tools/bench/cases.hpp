// The benchmark's table of cases and its naming: one case is a shape, a layout, an op and a
// cache state, named with the problem grammar the tests use (BatchNormProblem::parse) plus
// the op and the cache: "n32c64h56w56:nhwc:backward:cold" (what --filter matches against).
// A Workload is a case without its cache state: the unit that owns data, reference results
// and validation, shared by the cold and the hot measurement.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "bnorm/kernels/batchnorm.hpp"

namespace bnorm::bench {

enum class Op { forward_train, forward_infer, backward };
enum class Cache { cold, hot };

const char* to_string(Op op);
const char* to_string(Cache cache);

struct Workload {
  std::vector<std::int64_t> dims;  // logical (N, C) or (N, C, H, W)
  Layout layout = Layout::channels_first;
  Op op = Op::forward_train;

  BatchNormProblem problem() const;
  std::string shape_name() const;   // "32x64x56x56"
  std::string layout_name() const;  // "nchw", "nhwc", or "nc" for 2-d
  std::string problem_name() const; // "n32c64h56w56:nhwc", "n1024c1024:nc"
  std::string name() const;         // "n32c64h56w56:nhwc:backward"
  std::int64_t numel() const;
  // Bytes no implementation can avoid moving: forward reads x and writes y, backward reads
  // x and dy and writes dx (per-channel vectors are negligible and not counted).
  std::size_t unavoidable_bytes() const;
  // Bytes of the big per-call buffers (x, y) or (x, dy, dx): what one buffer set touches.
  std::size_t buffer_set_bytes() const { return unavoidable_bytes(); }
};

struct BenchCase {
  Workload workload;
  Cache cache = Cache::cold;
  std::string name() const;  // "n32c64h56w56:nhwc:backward:cold"
};

// The table: 4-d shapes in nchw and nhwc, 2-d shapes in nc; every op; cold and hot.
// Ordered so that the cases of one workload are adjacent (cold, then hot).
std::vector<BenchCase> default_cases();

// Cases whose name contains any of the filters (all cases when filters is empty). A filter
// that starts with a problem string in another spelling of the grammar ("n8c512s49:nchw",
// "n8c512s49:nchw:backward") keeps the cases of that problem (and op, cache) too.
std::vector<BenchCase> filter_cases(const std::vector<BenchCase>& cases,
                                    const std::vector<std::string>& filters);

}  // namespace bnorm::bench
