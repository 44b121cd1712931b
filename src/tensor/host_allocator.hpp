// Host memory for tensor storage, with large buffers kept for reuse.
//
// A training step allocates the same activation and gradient tensors every step. Returned to
// glibc, a buffer above its mmap threshold goes back to the kernel, and the next step's
// buffer of the same size comes back as fresh pages: one page fault and one page of zeroing
// per 4 KiB, 6000 faults and 24 MB zeroed per vgg-mini step, about 10% of its time. So
// buffers of at least 256 KiB are kept in a cache (sizes rounded up to 64 KiB) when freed and
// handed out again for the same rounded size; small ones go straight to malloc, which already
// reuses them. The cache holds at most 1 GiB; release_cached_tensor_memory() empties it. Under
// AddressSanitizer nothing is cached, so that a use after free is still caught.
#pragma once

#include <cstddef>

namespace bnorm::detail {

// tensor_alignment-aligned memory of at least `bytes`; throws std::bad_alloc.
void* allocate_host(std::size_t bytes);
// Gives back memory from allocate_host(bytes), with the same `bytes`.
void free_host(void* memory, std::size_t bytes) noexcept;

}  // namespace bnorm::detail
