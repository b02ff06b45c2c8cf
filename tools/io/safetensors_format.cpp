// Parsing and validating the safetensors layout from raw bytes. Every number in the header
// is checked before it is used: the header length against the file, each tensor's element
// count against its byte span (with overflow checks), and the spans against each other.
#include "tools/io/safetensors_format.h"

#include <algorithm>
#include <bit>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/io/io_error.h"

namespace ag::io {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; so must the host be");

namespace {

using nlohmann::json;

// A non-negative integer that fits in 62 bits, so sums and products of two stay checkable.
bool read_size(const json& value, uint64_t* out) {
  if (value.is_number_unsigned()) {
    *out = value.get<uint64_t>();
  } else if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    *out = uint64_t(value.get<int64_t>());
  } else {
    return false;
  }
  return *out < (uint64_t(1) << 62);
}

// A value for an error message; containers only by type, as dumping them could recurse deeply.
std::string describe(const json& value) { return value.is_primitive() ? value.dump() : std::string(value.type_name()); }

TensorEntry parse_entry(const std::string& name, const json& info, std::string_view origin) {
  auto fail = [&](const std::string& what) { return IoError(fmt::format("{}: tensor \"{}\": {}", origin, name, what)); };
  if (!info.is_object()) throw fail("its header entry is not a JSON object");
  for (const auto& [key, value] : info.items())
    if (key != "dtype" && key != "shape" && key != "data_offsets") throw fail(fmt::format("unexpected field \"{}\"", key));

  TensorEntry entry;
  entry.name = name;
  auto dtype = info.find("dtype");
  if (dtype == info.end() || !dtype->is_string()) throw fail("missing \"dtype\" string");
  const std::string& dtype_name = dtype->get_ref<const std::string&>();
  if (dtype_name == "F32") entry.dtype = DType::f32;
  else if (dtype_name == "F64") entry.dtype = DType::f64;
  else throw fail(fmt::format("dtype \"{}\" is not supported (aegraph reads F32 and F64)", dtype_name));

  auto shape = info.find("shape");
  if (shape == info.end() || !shape->is_array()) throw fail("missing \"shape\" array");
  if (shape->size() > size_t(Shape::max_rank))
    throw fail(fmt::format("rank {} is above the maximum of {}", shape->size(), Shape::max_rank));
  uint64_t elements = 1;
  for (const json& d : *shape) {
    uint64_t size = 0;
    if (!read_size(d, &size)) throw fail(fmt::format("shape entry {} is not a valid dimension", describe(d)));
    if (size != 0 && elements > (uint64_t(1) << 62) / size) throw fail("its shape has too many elements");
    elements *= size;
    entry.shape.dim[entry.shape.rank++] = int64_t(size);
  }

  auto offsets = info.find("data_offsets");
  if (offsets == info.end() || !offsets->is_array() || offsets->size() != 2)
    throw fail("missing \"data_offsets\" [begin, end]");
  if (!read_size((*offsets)[0], &entry.begin) || !read_size((*offsets)[1], &entry.end))
    throw fail(fmt::format("data_offsets [{}, {}] are not valid byte offsets", describe((*offsets)[0]), describe((*offsets)[1])));
  if (entry.end < entry.begin) throw fail(fmt::format("data_offsets [{}, {}] end before they begin", entry.begin, entry.end));
  uint64_t element_size = dtype_size(entry.dtype);
  if (elements > (uint64_t(1) << 62) / element_size || elements * element_size != entry.end - entry.begin)
    throw fail(fmt::format("shape of {} elements of {} does not match data_offsets [{}, {}] ({} bytes)", elements,
                           dtype_name, entry.begin, entry.end, entry.end - entry.begin));
  return entry;
}

}  // namespace

const char* safetensors_dtype_name(DType dtype) { return dtype == DType::f32 ? "F32" : "F64"; }

SafetensorsLayout parse_safetensors_layout(std::string_view bytes, std::string_view origin) {
  if (bytes.size() < 8)
    throw IoError(fmt::format("{}: truncated: {} bytes, a safetensors file starts with an 8-byte header length", origin, bytes.size()));
  uint64_t header_length = 0;
  for (int b = 7; b >= 0; --b) header_length = header_length << 8 | uint8_t(bytes[size_t(b)]);
  if (header_length > safetensors_max_header)
    throw IoError(fmt::format("{}: header length {} is above the {} bytes allowed", origin, header_length, safetensors_max_header));
  if (header_length > bytes.size() - 8)
    throw IoError(fmt::format("{}: header length {} runs past the end of the file ({} bytes)", origin, header_length, bytes.size()));
  std::string_view header_text = bytes.substr(8, header_length);

  // nlohmann keeps the last of duplicate keys silently; a callback spots them at the top level.
  std::set<std::string> seen;
  std::string duplicate;
  auto note_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && !seen.insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  json header = json::parse(header_text.begin(), header_text.end(), note_keys, /*allow_exceptions=*/false);
  if (header.is_discarded()) throw IoError(fmt::format("{}: the header is not valid JSON", origin));
  if (!header.is_object()) throw IoError(fmt::format("{}: the header is not a JSON object", origin));
  if (!duplicate.empty()) throw IoError(fmt::format("{}: tensor \"{}\" appears twice in the header", origin, duplicate));

  SafetensorsLayout layout;
  layout.data = bytes.substr(8 + header_length);
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) throw IoError(fmt::format("{}: \"__metadata__\" is not a JSON object", origin));
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) throw IoError(fmt::format("{}: metadata \"{}\" is not a string", origin, key));
        layout.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    layout.entries.push_back(parse_entry(name, info, origin));
  }

  // The tensors must tile the data section exactly: sorted by offset, each begins where the
  // previous one ended, the first at 0 and the last at the end of the file.
  std::sort(layout.entries.begin(), layout.entries.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected_begin = 0;
  const TensorEntry* previous = nullptr;
  for (const TensorEntry& entry : layout.entries) {
    if (entry.end > layout.data.size())
      throw IoError(fmt::format("{}: tensor \"{}\": data_offsets [{}, {}] run past the data section ({} bytes)", origin, entry.name,
                                entry.begin, entry.end, layout.data.size()));
    if (entry.begin < expected_begin)
      throw IoError(fmt::format("{}: tensor \"{}\" overlaps tensor \"{}\" (data_offsets [{}, {}])", origin, entry.name,
                                previous->name, entry.begin, entry.end));
    if (entry.begin > expected_begin)
      throw IoError(fmt::format("{}: tensor \"{}\" starts at {}, leaving a gap after byte {}", origin, entry.name, entry.begin,
                                expected_begin));
    expected_begin = entry.end;
    previous = &entry;
  }
  if (expected_begin != layout.data.size())
    throw IoError(fmt::format("{}: the data section has {} bytes but the tensors cover {}", origin, layout.data.size(), expected_begin));
  return layout;
}

}  // namespace ag::io
