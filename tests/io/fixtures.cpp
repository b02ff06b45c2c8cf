// Test helpers: generated IDX files and MNIST folders; see fixtures.h.
#include "fixtures.h"


#include <fstream>
#include <stdexcept>


namespace ag::io::testing {

using test_files::put_u32;

uint8_t idx_pixel(uint32_t i, uint32_t r, uint32_t c) { return uint8_t((7 * i + 3 * r + c) % 256); }

std::string idx_images_bytes(uint32_t n, uint32_t rows, uint32_t cols) {
  std::string out;
  put_u32(out, 0x00000803);
  put_u32(out, n);
  put_u32(out, rows);
  put_u32(out, cols);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t c = 0; c < cols; ++c) out += char(idx_pixel(i, r, c));
  return out;
}

void write_mnist_folder(const std::string& dir, uint32_t train_n, uint32_t test_n, uint32_t rows, uint32_t cols) {
  std::filesystem::create_directories(dir);
  write_bytes(dir + "/train-images-idx3-ubyte.gz", gzip(idx_images_bytes(train_n, rows, cols)));
  write_bytes(dir + "/train-labels-idx1-ubyte.gz", gzip(idx_labels(train_n)));
  write_bytes(dir + "/t10k-images-idx3-ubyte.gz", gzip(idx_images_bytes(test_n, rows, cols)));
  write_bytes(dir + "/t10k-labels-idx1-ubyte.gz", gzip(idx_labels(test_n)));
}

}  // namespace ag::io::testing
