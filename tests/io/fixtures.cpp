// Test helpers: temporary folders, generated IDX files, gzip; see fixtures.h.
#include "fixtures.h"

#include <zlib.h>

#include <atomic>
#include <fstream>
#include <random>
#include <stdexcept>

#include <unistd.h>

namespace ag::io::testing {
namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += char(uint8_t(v >> shift));
}

}  // namespace

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device seed;
  path_ = std::filesystem::temp_directory_path() /
          ("aegraph-io-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" + std::to_string(seed()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

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

std::string idx_labels_bytes(uint32_t n) {
  std::string out;
  put_u32(out, 0x00000801);
  put_u32(out, n);
  for (uint32_t i = 0; i < n; ++i) out += char(i % 10);
  return out;
}

std::string gzip(std::string_view bytes) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("gzip: deflateInit2 failed");
  std::string out(deflateBound(&zs, uLong(bytes.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = uInt(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = uInt(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip: deflate did not finish");
  return out;
}

void write_bytes(const std::string& path, std::string_view bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), std::streamsize(bytes.size()));
  if (!file) throw std::runtime_error("cannot write test file " + path);
}

std::string read_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot read test file " + path);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

void write_mnist_folder(const std::string& dir, uint32_t train_n, uint32_t test_n, uint32_t rows, uint32_t cols) {
  std::filesystem::create_directories(dir);
  write_bytes(dir + "/train-images-idx3-ubyte.gz", gzip(idx_images_bytes(train_n, rows, cols)));
  write_bytes(dir + "/train-labels-idx1-ubyte.gz", gzip(idx_labels_bytes(train_n)));
  write_bytes(dir + "/t10k-images-idx3-ubyte.gz", gzip(idx_images_bytes(test_n, rows, cols)));
  write_bytes(dir + "/t10k-labels-idx1-ubyte.gz", gzip(idx_labels_bytes(test_n)));
}

}  // namespace ag::io::testing
