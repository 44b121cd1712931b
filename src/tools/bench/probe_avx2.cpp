// The probe loops built for AVX2/FMA (see probe_loops.hpp); probe.cpp calls them
// only when the CPU reports both.
#include "tools/bench/probe_loops.hpp"

namespace bnorm::bench::detail {

void probe_forward_avx2(const float* x, float* y, std::int64_t n) { probe_forward_loop(x, y, n); }
void probe_backward_avx2(const float* x, const float* dy, float* dx, std::int64_t n) {
  probe_backward_loop(x, dy, dx, n);
}
void probe_two_pass_forward_avx2(const float* x, float* y, std::int64_t n) {
  probe_two_pass_forward_loop<false>(x, y, n);
}
void probe_two_pass_backward_avx2(const float* x, const float* dy, float* dx, std::int64_t n) {
  probe_two_pass_backward_loop<false>(x, dy, dx, n);
}
void probe_two_pass_whole_forward_avx2(const float* x, float* y, std::int64_t n) {
  probe_two_pass_forward_loop<true>(x, y, n);
}
void probe_two_pass_whole_backward_avx2(const float* x, const float* dy, float* dx, std::int64_t n) {
  probe_two_pass_backward_loop<true>(x, dy, dx, n);
}

}  // namespace bnorm::bench::detail
