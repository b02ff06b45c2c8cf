// libFuzzer target for the IDX reader: arbitrary bytes, raw or gzip, read as images and as
// labels. Only IoError may come out; a crash, a sanitizer report or any other exception
// (bad_alloc included) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tools/io/idx.h"
#include "tools/io/io_error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    ag::io::IdxImages images = ag::io::parse_idx_images(bytes, "fuzz input");
    if (images.pixels.size() != size_t(images.n) * size_t(images.rows) * size_t(images.cols)) __builtin_trap();
  } catch (const ag::io::IoError&) {
  }
  try {
    ag::io::parse_idx_labels(bytes, "fuzz input");
  } catch (const ag::io::IoError&) {
  }
  return 0;
}
