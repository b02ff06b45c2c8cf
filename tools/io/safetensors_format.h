// The safetensors layout, parsed and validated from raw bytes without building tensors:
//   8-byte little-endian header length N | N bytes of JSON header | data section.
// The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the data section) plus an optional "__metadata__" string map. This
// layer holds every check, so the fuzzer exercises all of them without the graph library.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "graph/tensor.h"

namespace ag::io {

using Metadata = std::map<std::string, std::string>;

// The header is capped like the reference implementation does (100 MB), so a hostile length
// cannot make us allocate.
inline constexpr uint64_t safetensors_max_header = 100'000'000;

struct TensorEntry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;           // rank <= Shape::max_rank
  uint64_t begin = 0;    // byte offsets into the data section
  uint64_t end = 0;
};

struct SafetensorsLayout {
  std::vector<TensorEntry> entries;  // in data order (by begin offset)
  Metadata metadata;
  std::string_view data;  // the data section, a view into the parsed bytes
};

// Throws IoError naming `origin` (and the tensor, where one is at fault) unless: the length
// fits the bytes, the header is a JSON object, every dtype is F32 or F64, every shape's
// element count times the dtype size equals its offsets' span, and the tensors tile the data
// section in order without gaps or overlaps (as the reference implementation requires).
SafetensorsLayout parse_safetensors_layout(std::string_view bytes, std::string_view origin);

// The dtype's name in the header ("F32", "F64").
const char* safetensors_dtype_name(DType dtype);

}  // namespace ag::io
