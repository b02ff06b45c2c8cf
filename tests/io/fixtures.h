// Test helpers for the I/O tests: a temporary folder that cleans up after itself, small IDX
// files generated in memory, gzip compression, and an assertion that an error names a file.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "tools/io/io_error.h"

namespace ag::io::testing {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// An IDX images file: magic 0x803, n, rows, cols, then pixel (i, r, c) = (7i + 3r + c) mod 256.
std::string idx_images_bytes(uint32_t n, uint32_t rows, uint32_t cols);
// An IDX labels file: magic 0x801, n, then label i = i mod 10.
std::string idx_labels_bytes(uint32_t n);
uint8_t idx_pixel(uint32_t i, uint32_t r, uint32_t c);

std::string gzip(std::string_view bytes);
void write_bytes(const std::string& path, std::string_view bytes);
std::string read_bytes(const std::string& path);

// Writes a folder holding the four standard files (gzip), with small counts.
void write_mnist_folder(const std::string& dir, uint32_t train_n, uint32_t test_n, uint32_t rows = 28, uint32_t cols = 28);

// The message of the IoError that `action` throws; fails the test when it throws nothing
// or something else.
template <class Action>
std::string io_error_of(Action&& action) {
  try {
    action();
  } catch (const IoError& e) {
    return e.what();
  }
  FAIL("expected an ag::io::IoError");
  return "";
}

}  // namespace ag::io::testing
