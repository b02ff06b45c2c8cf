// Reading and writing named host tensors as .safetensors files (the format Python's
// `safetensors` reads): checkpoints of aegraph models. Files are written atomically and
// validated in full when read; see safetensors_format.h for the layout and its checks.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "graph/tensor.h"
#include "tools/io/safetensors_format.h"

namespace ag::io {

struct NamedTensor {
  std::string name;
  HostTensor tensor;
};

struct TensorFile {
  std::vector<NamedTensor> tensors;  // in the order they appear in the file
  Metadata metadata;

  // The tensor called `name`, or nullptr.
  const NamedTensor* find(std::string_view name) const;
};

// The file's bytes: tensors in the given order, header padded with spaces to a multiple of 8.
// Throws IoError on an empty or duplicate name, or the reserved name "__metadata__".
std::string encode_safetensors(const std::vector<NamedTensor>& tensors, const Metadata& metadata = {});
TensorFile decode_safetensors(std::string_view bytes, std::string_view origin);

// Atomic: a failed save leaves any existing file at `path` as it was.
void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors, const Metadata& metadata = {});
TensorFile load_safetensors(const std::string& path);

}  // namespace ag::io
