// safetensors reader and writer (bnorm/io/safetensors.hpp). The reader validates in the order
// the bytes are met: header length, JSON, each entry on its own, the entries against each
// other and the data section, then bnorm's checksums.
#include "bnorm/io/safetensors.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "bnorm/io/file.hpp"

namespace bnorm {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* metadata_entry = "__metadata__";
// The Python library refuses headers above 100 MB; so do we, before allocating anything.
constexpr std::uint64_t max_header_bytes = 100'000'000;

// ---- writing

// zlib's crc32 with a null buffer (what an empty vector may give) returns the initial value,
// dropping what came before: empty pieces are skipped.
uLong crc32_update(uLong crc, const void* data, std::size_t size) {
  return size == 0 ? crc : ::crc32_z(crc, static_cast<const Bytef*>(data), size);
}

std::uint32_t crc32_of(std::span<const NamedTensor> tensors) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  for (const NamedTensor& t : tensors) crc = crc32_update(crc, t.bytes.data(), t.bytes.size());
  return static_cast<std::uint32_t>(crc);
}

std::uint32_t crc32_of(std::string_view text) {
  return static_cast<std::uint32_t>(crc32_update(::crc32(0L, Z_NULL, 0), text.data(), text.size()));
}

std::string hex8(std::uint32_t value) {
  char buffer[9];
  std::snprintf(buffer, sizeof buffer, "%08x", value);
  return buffer;
}

// The JSON header, padded with spaces to a multiple of 8 bytes.
std::string make_header(std::span<const NamedTensor> tensors, const Metadata& metadata) {
  Json header = Json::object();
  std::set<std::string> names;
  std::uint64_t offset = 0;
  for (const NamedTensor& t : tensors) {
    if (t.name.empty() || t.name == metadata_entry)
      throw std::invalid_argument("bnorm: safetensors: invalid tensor name \"" + t.name + "\"");
    if (!names.insert(t.name).second)
      throw std::invalid_argument("bnorm: safetensors: duplicate tensor name " + t.name);
    const std::uint64_t expected = static_cast<std::uint64_t>(t.numel()) * stored_dtype_size(t.dtype);
    if (t.bytes.size() != expected)
      throw std::invalid_argument("bnorm: safetensors: " + t.name + " is " + t.describe() + " (" +
                                  std::to_string(expected) + " bytes) but holds " +
                                  std::to_string(t.bytes.size()) + " bytes");
    header[t.name] = {{"dtype", to_string(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  Json meta = Json::object();
  for (const auto& [key, value] : metadata) {
    if (key == format_metadata_key || key == data_checksum_metadata_key || key == header_checksum_metadata_key)
      throw std::invalid_argument(std::string("bnorm: safetensors: metadata key ") + key +
                                  " is reserved for the writer");
    meta[key] = value;
  }
  meta[format_metadata_key] = format_version;
  meta[data_checksum_metadata_key] = hex8(crc32_of(tensors));
  header[metadata_entry] = std::move(meta);

  std::string text;
  try {
    // The header checksum covers the dump without itself; appended last, so that the reader
    // gets the same dump back by erasing it.
    const std::string unsealed = header.dump(-1, ' ', false, Json::error_handler_t::strict);
    header[metadata_entry][header_checksum_metadata_key] = hex8(crc32_of(unsealed));
    text = header.dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const Json::exception& e) {
    throw std::invalid_argument(std::string("bnorm: safetensors: a name or metadata string is not valid UTF-8: ") + e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

// Streams a whole file to `write`: the length, the header made by make_header, the data.
void write_safetensors(const std::string& header, std::span<const NamedTensor> tensors,
                       const std::function<void(const void*, std::size_t)>& write) {
  unsigned char length[8];
  const std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(n >> (8 * i));
  write(length, sizeof length);
  write(header.data(), header.size());
  for (const NamedTensor& t : tensors) write(t.bytes.data(), t.bytes.size());
}

// ---- reading

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("bnorm: " + source_ + ": invalid safetensors file: " + what);
  }

  // nlohmann keeps the last of duplicate keys silently; this callback sees every key.
  Json parse_header(std::string_view text) const {
    std::vector<std::set<std::string>> keys_per_object;
    auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
      if (event == Json::parse_event_t::object_start) keys_per_object.emplace_back();
      else if (event == Json::parse_event_t::object_end) keys_per_object.pop_back();
      else if (event == Json::parse_event_t::key && !keys_per_object.back().insert(parsed.get<std::string>()).second)
        fail("duplicate key \"" + parsed.get<std::string>() + "\" in the JSON header");
      return true;
    };
    try {
      return Json::parse(text, callback);
    } catch (const Json::exception& e) {
      fail(std::string("the header is not valid JSON: ") + e.what());
    }
  }

  std::uint64_t read_extent(const std::string& name, const char* field, const Json& value) const {
    if (value.is_number_integer() && !value.is_number_unsigned())
      fail(name + ": negative value " + value.dump() + " in " + field);
    if (!value.is_number_unsigned())
      fail(name + ": " + field + " holds " + value.dump() + ", not a non-negative integer");
    return value.get<std::uint64_t>();
  }

  struct Entry {
    NamedTensor tensor;  // bytes filled in later
    std::uint64_t begin = 0, end = 0;
  };

  Entry read_entry(const std::string& name, const Json& value) const {
    if (!value.is_object()) fail(name + ": entry is " + value.dump() + ", not an object");
    for (const auto& [key, _] : value.items())
      if (key != "dtype" && key != "shape" && key != "data_offsets") fail(name + ": unknown field \"" + key + "\"");
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!value.contains(key)) fail(name + ": missing field \"" + key + "\"");

    Entry entry;
    entry.tensor.name = name;
    const Json& dtype = value["dtype"];
    if (!dtype.is_string()) fail(name + ": dtype " + dtype.dump() + " is not a string");
    const std::string dtype_name = dtype.get<std::string>();
    bool known = false;
    for (StoredDType d : {StoredDType::f32, StoredDType::i64, StoredDType::u64, StoredDType::u8})
      if (dtype_name == to_string(d)) entry.tensor.dtype = d, known = true;
    if (!known) fail(name + ": unsupported dtype \"" + dtype_name + "\" (bnorm reads F32, I64, U64, U8)");

    const Json& shape = value["shape"];
    if (!shape.is_array()) fail(name + ": shape " + shape.dump() + " is not an array");
    std::uint64_t bytes = stored_dtype_size(entry.tensor.dtype);
    for (const Json& extent : shape) {
      const std::uint64_t e = read_extent(name, "shape", extent);
      if (e > static_cast<std::uint64_t>(INT64_MAX) || __builtin_mul_overflow(bytes, e, &bytes) ||
          bytes > static_cast<std::uint64_t>(INT64_MAX))
        fail(name + ": the byte size of shape " + shape.dump() + " overflows");
      entry.tensor.shape.push_back(static_cast<std::int64_t>(e));
    }

    const Json& offsets = value["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2)
      fail(name + ": data_offsets " + offsets.dump() + " is not a [begin, end] pair");
    entry.begin = read_extent(name, "data_offsets", offsets[0]);
    entry.end = read_extent(name, "data_offsets", offsets[1]);
    if (entry.end < entry.begin) fail(name + ": data_offsets " + offsets.dump() + " end before they begin");
    if (entry.end - entry.begin != bytes)
      fail(name + ": " + entry.tensor.describe() + " needs " + std::to_string(bytes) + " bytes but data_offsets " +
           offsets.dump() + " span " + std::to_string(entry.end - entry.begin));
    return entry;
  }

  Metadata read_metadata(const Json& value) const {
    if (!value.is_object()) fail("__metadata__ is " + value.dump() + ", not an object");
    Metadata metadata;
    for (const auto& [key, v] : value.items()) {
      if (!v.is_string()) fail("__metadata__ value of \"" + key + "\" is " + v.dump() + ", not a string");
      metadata[key] = v.get<std::string>();
    }
    return metadata;
  }

  SafetensorsFile decode(std::span<const std::byte> bytes) const {
    if (bytes.size() < 8)
      fail("the file is " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
    std::uint64_t header_length = 0;
    for (int i = 0; i < 8; ++i) header_length |= static_cast<std::uint64_t>(bytes[i]) << (8 * i);
    if (header_length > max_header_bytes)
      fail("header length " + std::to_string(header_length) + " is above the " +
           std::to_string(max_header_bytes) + "-byte limit");
    if (header_length > bytes.size() - 8)
      fail("header length " + std::to_string(header_length) + " runs past the end of the file (" +
           std::to_string(bytes.size()) + " bytes)");
    const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), header_length);
    const std::span<const std::byte> data = bytes.subspan(8 + header_length);

    const Json header = parse_header(text);
    if (!header.is_object()) fail("the JSON header is not an object");

    SafetensorsFile file{.source = source_};
    std::vector<Entry> entries;
    for (const auto& [key, value] : header.items()) {
      if (key == metadata_entry) file.metadata = read_metadata(value);
      else entries.push_back(read_entry(key, value));
    }

    // Data order; zero-byte tensors sort before the tensor that starts at the same offset.
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    std::uint64_t covered = 0;
    for (const Entry& e : entries) {
      const std::string where = e.tensor.name + ": data_offsets [" + std::to_string(e.begin) + ", " +
                                std::to_string(e.end) + "]";
      if (e.end > data.size())
        fail(where + " run past the data section (" + std::to_string(data.size()) + " bytes)");
      if (e.begin < covered) fail(where + " overlap the previous tensor, which ends at " + std::to_string(covered));
      if (e.begin > covered) fail(where + " leave a gap after offset " + std::to_string(covered));
      covered = e.end;
    }
    if (covered != data.size())
      fail("the data section is " + std::to_string(data.size()) + " bytes but the tensors cover " +
           std::to_string(covered));

    check_bnorm_keys(file, header, data);

    file.tensors.reserve(entries.size());
    for (Entry& e : entries) {
      const std::byte* begin = data.data() + e.begin;
      e.tensor.bytes.assign(begin, begin + (e.end - e.begin));
      file.tensors.push_back(std::move(e.tensor));
    }
    return file;
  }

  // Our files carry a version and two checksums; files of other tools carry none of them.
  void check_bnorm_keys(SafetensorsFile& file, Json header, std::span<const std::byte> data) const {
    Metadata& metadata = file.metadata;
    const bool ours = metadata.count(format_metadata_key) > 0;
    if (ours && metadata.at(format_metadata_key) != format_version)
      fail(std::string("unsupported ") + format_metadata_key + " \"" + metadata.at(format_metadata_key) +
           "\" (this build reads " + format_version + ")");
    for (const char* key : {data_checksum_metadata_key, header_checksum_metadata_key}) {
      if (ours && !metadata.count(key)) fail(std::string("a bnorm file without its ") + key + " key");
    }
    if (const auto it = metadata.find(header_checksum_metadata_key); it != metadata.end()) {
      header[metadata_entry].erase(header_checksum_metadata_key);
      const std::string actual = hex8(crc32_of(header.dump()));
      if (it->second != actual)
        fail("header checksum mismatch: the header says " + it->second + ", its contents give " + actual +
             " (the file is corrupt)");
    }
    if (const auto it = metadata.find(data_checksum_metadata_key); it != metadata.end()) {
      const std::string actual = hex8(crc32_of(
          std::string_view(reinterpret_cast<const char*>(data.data()), data.size())));
      if (it->second != actual)
        fail("data checksum mismatch: the header says " + it->second + ", the data gives " + actual +
             " (the file is corrupt)");
    }
    file.checksum_verified = ours;
    for (const char* key : {format_metadata_key, data_checksum_metadata_key, header_checksum_metadata_key})
      metadata.erase(key);
  }

 private:
  std::string source_;
};

}  // namespace

const NamedTensor* SafetensorsFile::find(const std::string& name) const {
  for (const NamedTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const NamedTensor& SafetensorsFile::at(const std::string& name) const {
  if (const NamedTensor* t = find(name)) return *t;
  throw std::runtime_error("bnorm: " + source + ": no tensor named " + name);
}

const std::string& SafetensorsFile::metadata_at(const std::string& key) const {
  const auto it = metadata.find(key);
  if (it == metadata.end()) throw std::runtime_error("bnorm: " + source + ": no metadata key " + key);
  return it->second;
}

std::vector<std::byte> encode_safetensors(std::span<const NamedTensor> tensors, const Metadata& metadata) {
  std::vector<std::byte> bytes;
  write_safetensors(make_header(tensors, metadata), tensors, [&](const void* p, std::size_t n) {
    const std::byte* b = static_cast<const std::byte*>(p);
    bytes.insert(bytes.end(), b, b + n);
  });
  return bytes;
}

SafetensorsFile decode_safetensors(std::span<const std::byte> bytes, const std::string& source) {
  return Reader(source).decode(bytes);
}

void save_safetensors(const std::filesystem::path& path, std::span<const NamedTensor> tensors,
                      const Metadata& metadata) {
  // The header (and so every input check) comes before the temporary file is created.
  const std::string header = make_header(tensors, metadata);
  write_file_atomically(path, [&](FileSink& sink) {
    write_safetensors(header, tensors, [&](const void* p, std::size_t n) { sink.write(p, n); });
  });
}

SafetensorsFile load_safetensors(const std::filesystem::path& path) {
  const std::vector<std::byte> bytes = read_file_bytes(path);
  return decode_safetensors(bytes, path.string());
}

}  // namespace bnorm
