// Named host tensors to and from .safetensors bytes and files. The layout checks live in
// safetensors_format.cpp; this file only builds the header, copies data, and does file I/O.
#include "tools/io/safetensors.h"

#include <cstring>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/io/atomic_file.h"
#include "tools/io/io_error.h"

namespace ag::io {

const NamedTensor* TensorFile::find(std::string_view name) const {
  for (const NamedTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

std::string encode_safetensors(const std::vector<NamedTensor>& tensors, const Metadata& metadata) {
  // ordered_json keeps the tensors in the order given, which is also their data order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const NamedTensor& t : tensors) {
    if (t.name.empty()) throw IoError("safetensors: a tensor has an empty name");
    if (t.name == "__metadata__") throw IoError("safetensors: \"__metadata__\" is reserved and cannot name a tensor");
    if (!names.insert(t.name).second) throw IoError(fmt::format("safetensors: tensor \"{}\" is named twice", t.name));
    uint64_t bytes = uint64_t(t.tensor.numel()) * dtype_size(t.tensor.dtype());
    if (bytes > 0 && t.tensor.ptr<char>() == nullptr)  // a default-constructed HostTensor has no storage
      throw IoError(fmt::format("safetensors: tensor \"{}\" has no data", t.name));
    nlohmann::ordered_json shape = nlohmann::ordered_json::array();
    for (int i = 0; i < t.tensor.shape().rank; ++i) shape.push_back(t.tensor.shape()[i]);
    header[t.name] = {{"dtype", safetensors_dtype_name(t.tensor.dtype())}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header_text = header.dump();
  header_text.resize((header_text.size() + 7) / 8 * 8, ' ');  // keeps the data 8-byte aligned

  std::string out(8, '\0');
  uint64_t length = header_text.size();
  for (int b = 0; b < 8; ++b) out[size_t(b)] = char(length >> (8 * b));
  out.reserve(8 + header_text.size() + offset);
  out += header_text;
  for (const NamedTensor& t : tensors)
    out.append(t.tensor.ptr<char>(), size_t(t.tensor.numel()) * dtype_size(t.tensor.dtype()));
  return out;
}

TensorFile decode_safetensors(std::string_view bytes, std::string_view origin) {
  SafetensorsLayout layout = parse_safetensors_layout(bytes, origin);
  TensorFile file;
  file.metadata = std::move(layout.metadata);
  for (const TensorEntry& entry : layout.entries) {
    NamedTensor t{entry.name, HostTensor(entry.shape, entry.dtype)};
    if (entry.end > entry.begin) std::memcpy(t.tensor.ptr<char>(), layout.data.data() + entry.begin, entry.end - entry.begin);
    file.tensors.push_back(std::move(t));
  }
  return file;
}

void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors, const Metadata& metadata) {
  std::string bytes;
  try {
    bytes = encode_safetensors(tensors, metadata);
  } catch (const IoError& e) {
    throw IoError(fmt::format("{}: {}", path, e.what()));
  }
  write_file_atomic(path, bytes);
}

TensorFile load_safetensors(const std::string& path) { return decode_safetensors(read_file(path), path); }

}  // namespace ag::io
