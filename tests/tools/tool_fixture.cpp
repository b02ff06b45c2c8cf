// Test helpers for the tool tests; see tool_fixture.h.
#include "tool_fixture.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <catch2/catch.hpp>

extern char** environ;

namespace ag::tools::testing {

using test_files::put_u32;

namespace {

// A small deterministic hash: the per-image jitter and speckle.
uint32_t mix(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  return x ^ (x >> 16);
}

}  // namespace

std::string idx_images(uint32_t n, uint32_t rows, uint32_t cols, uint32_t magic) {
  std::string out;
  put_u32(out, magic);
  put_u32(out, n);
  put_u32(out, rows);
  put_u32(out, cols);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t label = i % 10, h = mix(i + 1);
    const int shift = int(h % 3) - 1, bar = int(2 + 2 * label * rows / 28) + shift;  // the label's row
    const int column = int(cols / 2) + int((h >> 8) % 3) - 1;
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t c = 0; c < cols; ++c) {
        const bool ink = (int(r) >= bar && int(r) < bar + 3 && c >= 4 && c + 4 < cols) ||
                         (int(c) >= column && int(c) < column + 2 && r >= 4 && r + 4 < rows && label % 2 == 0);
        const uint32_t speckle = mix(h ^ (r * cols + c));
        out += char(uint8_t(ink ? 200 + speckle % 56 : (speckle % 11 == 0 ? 40 : 0)));
      }
  }
  return out;
}



void write_dataset(const std::string& dir, uint32_t train_n, uint32_t test_n, uint32_t rows, uint32_t cols) {
  std::filesystem::create_directories(dir);
  write_file(dir + "/train-images-idx3-ubyte.gz", gzip(idx_images(train_n, rows, cols)));
  write_file(dir + "/train-labels-idx1-ubyte.gz", gzip(idx_labels(train_n)));
  // The test images continue the training sequence, so they are new images of the same kind.
  std::string test = idx_images(train_n + test_n, rows, cols);
  std::string header = test.substr(0, 16);
  header[4] = char(test_n >> 24), header[5] = char(test_n >> 16), header[6] = char(test_n >> 8), header[7] = char(test_n);
  write_file(dir + "/t10k-images-idx3-ubyte.gz", gzip(header + test.substr(16 + size_t(train_n) * rows * cols)));
  std::string labels = idx_labels(train_n + test_n);
  std::string label_header = idx_labels(test_n).substr(0, 8);
  write_file(dir + "/t10k-labels-idx1-ubyte.gz", gzip(label_header + labels.substr(8 + train_n)));
}


std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return "";
  std::ostringstream bytes;
  bytes << file.rdbuf();
  return bytes.str();
}

nlohmann::json read_json(const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
  INFO(path);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

ToolResult run_binary(const std::string& binary, const std::vector<std::string>& args) {
  ToolResult result;
  result.command = binary;
  for (const std::string& a : args) result.command += " " + a;
  const TempDir capture;  // the child's stdout and stderr, removed on return
  const std::string out_path = capture.file("out"), err_path = capture.file("err");
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + binary);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = read_file(out_path);
  result.err = read_file(err_path);
  return result;
}

ToolResult ae_train(const std::vector<std::string>& args) { return run_binary(AEGRAPH_TRAIN_BIN, args); }
ToolResult ae_eval(const std::vector<std::string>& args) { return run_binary(AEGRAPH_EVAL_BIN, args); }

void check_refusal(const ToolResult& result, const std::string& tool, const std::vector<std::string>& names) {
  INFO(result.command);
  INFO("stderr: " << result.err);
  CHECK(result.exit_code > 0);
  CHECK(result.err.rfind(tool + ": ", 0) == 0);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  for (const std::string& name : names) CHECK(result.err.find(name) != std::string::npos);
  for (const char* crash : {"Sanitizer", "runtime error", "terminate called", "Aborted"})
    CHECK(result.err.find(crash) == std::string::npos);
}

SafetensorsHeader parse_safetensors(const std::string& bytes) {
  REQUIRE(bytes.size() >= 8);
  uint64_t length = 0;
  for (int b = 0; b < 8; ++b) length |= uint64_t(uint8_t(bytes[size_t(b)])) << (8 * b);
  REQUIRE(8 + length <= bytes.size());
  SafetensorsHeader parsed;
  parsed.header = nlohmann::json::parse(bytes.substr(8, length), nullptr, false);
  REQUIRE(parsed.header.is_object());
  parsed.data = bytes.substr(8 + length);
  parsed.data_bytes = parsed.data.size();
  return parsed;
}

std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.is_regular_file()) files[entry.path().filename().string()] = read_file(entry.path().string());
  return files;
}

}  // namespace ag::tools::testing
