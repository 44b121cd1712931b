// The caching host allocator (host_allocator.hpp).
#include "tensor/host_allocator.hpp"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>

#include "bnorm/tensor/tensor.hpp"

namespace bnorm {
namespace detail {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool cache_enabled = false;
#else
constexpr bool cache_enabled = true;
#endif
constexpr std::size_t min_cached_bytes = std::size_t{256} << 10;
constexpr std::size_t size_granule = std::size_t{64} << 10;
constexpr std::size_t max_cached_total = std::size_t{1} << 30;

std::size_t rounded(std::size_t bytes) {
  if (bytes < min_cached_bytes) return (bytes + tensor_alignment - 1) / tensor_alignment * tensor_alignment;
  return (bytes + size_granule - 1) / size_granule * size_granule;
}

struct Cache {
  std::mutex mutex;
  std::multimap<std::size_t, void*> free_blocks;  // rounded size -> block
  std::size_t total = 0;                          // bytes in free_blocks
};

Cache& cache() {
  static Cache* instance = new Cache;  // never destroyed: tensors may be freed during exit
  return *instance;
}

bool cacheable(std::size_t size) { return cache_enabled && size >= min_cached_bytes; }

}  // namespace

void* allocate_host(std::size_t bytes) {
  const std::size_t size = rounded(bytes == 0 ? 1 : bytes);
  if (cacheable(size)) {
    Cache& c = cache();
    const std::lock_guard lock(c.mutex);
    if (auto found = c.free_blocks.find(size); found != c.free_blocks.end()) {
      void* block = found->second;
      c.free_blocks.erase(found);
      c.total -= size;
      return block;
    }
  }
  void* memory = std::aligned_alloc(tensor_alignment, size);
  if (memory == nullptr) {
    release_cached_tensor_memory();  // the cache may hold what is missing
    memory = std::aligned_alloc(tensor_alignment, size);
    if (memory == nullptr) throw std::bad_alloc();
  }
  return memory;
}

void free_host(void* memory, std::size_t bytes) noexcept {
  const std::size_t size = rounded(bytes == 0 ? 1 : bytes);
  if (cacheable(size)) {
    Cache& c = cache();
    const std::lock_guard lock(c.mutex);
    if (c.total + size <= max_cached_total) {
      try {
        c.free_blocks.emplace(size, memory);
        c.total += size;
        return;
      } catch (...) {  // no memory for the map node: free the block instead
      }
    }
  }
  std::free(memory);
}

}  // namespace detail

void release_cached_tensor_memory() {
  detail::Cache& c = detail::cache();
  const std::lock_guard lock(c.mutex);
  for (const auto& [size, block] : c.free_blocks) std::free(block);
  c.free_blocks.clear();
  c.total = 0;
}

}  // namespace bnorm
