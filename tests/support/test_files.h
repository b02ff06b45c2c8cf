// File helpers shared by the I/O and tool tests: a temporary folder that cleans up after itself,
// gzip in memory, whole-file reads and writes, and the big-endian words IDX files are made of.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace ag::test_files {

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

void put_u32(std::string& out, uint32_t v);  // appended big-endian, as IDX headers store it
// An IDX labels file (uncompressed): magic, n, then label i = i mod 10.
std::string idx_labels(uint32_t n, uint32_t magic = 0x00000801);
std::string gzip(std::string_view bytes);
void write_bytes(const std::string& path, std::string_view bytes);  // throws when it cannot
std::string read_bytes(const std::string& path);                    // throws when it cannot

}  // namespace ag::test_files
