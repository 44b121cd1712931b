// IDX reader: header checks first, then one read of exactly the announced payload.
#include "bnorm/data/idx.hpp"

#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "bnorm/data/input_file.hpp"

namespace bnorm {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error(path + ": " + what);
}

std::string hex32(std::uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08X", v);
  return text;
}

std::string hex8(unsigned v) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%02X", v);
  return text;
}

// The element types the IDX format defines, for error messages.
const char* idx_type_name(unsigned type) {
  switch (type) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "not an IDX type";
  }
}

const char* payload_noun(int rank) { return rank == 3 ? "pixels" : rank == 1 ? "labels" : "values"; }

const char* rank_meaning(int rank) {
  return rank == 3 ? " (images: count, rows, columns)" : rank == 1 ? " (labels: count)" : "";
}

std::uint32_t big_endian_u32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

std::string dims_text(const std::vector<std::int64_t>& dims) {
  std::ostringstream out;
  out << '(';
  for (std::size_t i = 0; i < dims.size(); ++i) out << (i ? ", " : "") << dims[i];
  out << ')';
  return out.str();
}

}  // namespace

IdxArray read_idx_u8(const std::string& path, int expected_rank) {
  if (expected_rank < 1 || expected_rank > 4)
    throw std::invalid_argument("read_idx_u8: expected_rank must be 1..4, got " +
                                std::to_string(expected_rank));
  InputFile file(path);
  const std::uint32_t expected_magic = (std::uint32_t{idx_type_u8} << 8) | unsigned(expected_rank);

  unsigned char magic[4];
  const std::size_t got_magic = file.read(magic, 4);
  if (got_magic < 4)
    fail(path, "expected a 4-byte IDX magic number " + hex32(expected_magic) + ", found a file of " +
                   std::to_string(got_magic) + " bytes");
  const std::uint32_t found_magic = big_endian_u32(magic);
  if (magic[0] != 0 || magic[1] != 0)
    fail(path, "not an IDX file: expected magic number " + hex32(expected_magic) + ", found " +
                   hex32(found_magic));
  if (magic[2] != idx_type_u8)
    fail(path, "expected IDX data type " + hex8(idx_type_u8) + " (unsigned byte), found " +
                   hex8(magic[2]) + " (" + idx_type_name(magic[2]) + ")");
  if (magic[3] != expected_rank)
    fail(path, "expected " + std::to_string(expected_rank) + " dimension" +
                   (expected_rank == 1 ? "" : "s") + rank_meaning(expected_rank) + ", found " +
                   std::to_string(magic[3]) + " (magic number " + hex32(found_magic) + ", expected " +
                   hex32(expected_magic) + ")");

  unsigned char extents[16];
  const std::size_t header_rest = 4 * static_cast<std::size_t>(expected_rank);
  const std::size_t got_extents = file.read(extents, header_rest);
  if (got_extents < header_rest)
    fail(path, "expected " + std::to_string(header_rest) + " bytes of dimension sizes after the magic number, found " +
                   std::to_string(got_extents));

  IdxArray array;
  std::int64_t total = 1;
  for (int i = 0; i < expected_rank; ++i) array.dims.push_back(big_endian_u32(extents + 4 * i));
  for (int i = 0; i < expected_rank; ++i) {
    const std::int64_t d = array.dims[i];
    if (d == 0) fail(path, "dimension " + std::to_string(i) + " of " + dims_text(array.dims) + " is zero");
    if (d > idx_max_extent)
      fail(path, "dimension " + std::to_string(i) + " of " + dims_text(array.dims) + " is " +
                     std::to_string(d) + ", more than the limit " + std::to_string(idx_max_extent) +
                     " (corrupt header?)");
    total *= d;  // cannot overflow: each factor < 2^30 and the product is checked as it grows
    if (total > idx_max_bytes)
      fail(path, "dimensions " + dims_text(array.dims) + " announce more than " +
                     std::to_string(idx_max_bytes) + " bytes of data (corrupt header?)");
  }

  const std::string payload_text = "expected " + std::to_string(total) + " bytes of " +
                                   payload_noun(expected_rank) + " after the header, found ";
  const auto header_bytes = static_cast<std::uint64_t>(4 + header_rest);
  // A plain file says its payload length up front; a gzip'ed one cannot hold more than
  // deflate's maximum ratio (1032:1) allows. Either way, refuse before allocating the payload.
  const std::uint64_t plausible = file.is_gzip() ? file.size_on_disk() * 1100 + 4096
                                                 : file.size_on_disk() - header_bytes;
  if (!file.is_gzip() && plausible != static_cast<std::uint64_t>(total))
    fail(path, payload_text + std::to_string(plausible));
  if (static_cast<std::uint64_t>(total) > plausible)
    fail(path, payload_text + std::to_string(file.count_remaining()));

  array.values.resize(static_cast<std::size_t>(total));
  const std::size_t got = file.read(array.values.data(), array.values.size());
  if (got < array.values.size()) fail(path, payload_text + std::to_string(got));
  const std::uint64_t trailing = file.count_remaining();
  if (trailing > 0) fail(path, payload_text + std::to_string(total + trailing) + " (trailing bytes)");
  return array;
}

}  // namespace bnorm
