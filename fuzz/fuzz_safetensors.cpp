// libFuzzer target for the safetensors reader: arbitrary bytes through the full layout
// validation. Only IoError may come out, and what is accepted must be self-consistent:
// every tensor's span lies inside the data section.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tools/io/io_error.h"
#include "tools/io/safetensors_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    ag::io::SafetensorsLayout layout = ag::io::parse_safetensors_layout(bytes, "fuzz input");
    for (const ag::io::TensorEntry& entry : layout.entries)
      if (entry.begin > entry.end || entry.end > layout.data.size()) __builtin_trap();
  } catch (const ag::io::IoError&) {
  }
  return 0;
}
