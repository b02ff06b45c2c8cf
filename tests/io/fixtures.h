// Test helpers for the I/O tests: small IDX files generated in memory, MNIST folders, and an
// assertion that an error names a file (folders, gzip and file I/O: tests/support/test_files.h).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "test_files.h"
#include "tools/io/io_error.h"

namespace ag::io::testing {

using test_files::TempDir;
using test_files::gzip;
using test_files::idx_labels;  // magic 0x801, n, then label i = i mod 10
using test_files::read_bytes;
using test_files::write_bytes;

// An IDX images file: magic 0x803, n, rows, cols, then pixel (i, r, c) = (7i + 3r + c) mod 256.
std::string idx_images_bytes(uint32_t n, uint32_t rows, uint32_t cols);
uint8_t idx_pixel(uint32_t i, uint32_t r, uint32_t c);

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
