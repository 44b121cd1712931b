// The probe loops built for AVX2/FMA (see probe_loops.hpp); probe.cpp calls them
// only when the CPU reports both.
#include "tools/bench/probe_loops.hpp"

namespace bnorm::bench::detail {

void probe_forward_avx2(const float* x, float* y, std::int64_t n) { probe_forward_loop(x, y, n); }
void probe_backward_avx2(const float* x, const float* dy, float* dx, std::int64_t n) {
  probe_backward_loop(x, dy, dx, n);
}
template <bool kWhole>
void probe_two_pass_forward_avx2(const float* x, float* y, std::int64_t n) {
  probe_two_pass_forward_loop<kWhole>(x, y, n);
}
template <bool kWhole>
void probe_two_pass_backward_avx2(const float* x, const float* dy, float* dx, std::int64_t n) {
  probe_two_pass_backward_loop<kWhole>(x, dy, dx, n);
}
// Both orders, for probe.cpp (which sees only the declarations).
template void probe_two_pass_forward_avx2<false>(const float*, float*, std::int64_t);
template void probe_two_pass_forward_avx2<true>(const float*, float*, std::int64_t);
template void probe_two_pass_backward_avx2<false>(const float*, const float*, float*, std::int64_t);
template void probe_two_pass_backward_avx2<true>(const float*, const float*, float*, std::int64_t);

}  // namespace bnorm::bench::detail
