// SHA-256 (OpenSSL EVP) as lowercase hex, for checking downloads and identifying data sets.
#pragma once
#include <memory>
#include <string>
#include <string_view>

namespace ag::io {

// Hashes data fed in pieces, e.g. while a download arrives.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view bytes);
  std::string hex();  // finishes the hash; call once

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string sha256_hex(std::string_view bytes);
std::string sha256_file(const std::string& path);  // throws IoError naming the file

}  // namespace ag::io
