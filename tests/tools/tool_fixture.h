// Helpers for the ae-train / ae-eval tests: temporary folders, a small learnable MNIST-like
// data set written as gzip IDX files, running the tools as subprocesses (exit code, stdout,
// stderr), and reading what they leave behind (JSON, safetensors headers, whole files).
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_files.h"

namespace ag::tools::testing {

using test_files::TempDir;
using test_files::gzip;

// IDX bytes (uncompressed). Image i of a data set shows its label (i % 10) as a bar at a
// label-dependent place, jittered per image, so autoencoders and classifiers can learn it.
std::string idx_images(uint32_t n, uint32_t rows, uint32_t cols, uint32_t magic = 0x00000803);
using test_files::idx_labels;

// The four standard files (gzip) in `dir`, created if needed.
void write_dataset(const std::string& dir, uint32_t train_n = 300, uint32_t test_n = 100, uint32_t rows = 28,
                   uint32_t cols = 28);

inline void write_file(const std::string& path, std::string_view bytes) { test_files::write_bytes(path, bytes); }
std::string read_file(const std::string& path);  // "" when missing
nlohmann::json read_json(const std::string& path);

struct ToolResult {
  int exit_code = -1;       // the exit status; -1 when the process died from a signal
  std::string out, err;     // what it printed
  std::string command;      // for failure messages
};

// Runs `binary` with `args` (no shell), waits, and collects its output.
ToolResult run_binary(const std::string& binary, const std::vector<std::string>& args);
ToolResult ae_train(const std::vector<std::string>& args);
ToolResult ae_eval(const std::vector<std::string>& args);

// A refusal done right: a non-zero exit, one line on stderr starting with "<tool>: " that
// contains every one of `names`, and no sign of a crash or sanitizer report.
void check_refusal(const ToolResult& result, const std::string& tool, const std::vector<std::string>& names);

// A safetensors file's layout, parsed independently of the io library: the header JSON and
// the size of the data section.
struct SafetensorsHeader {
  nlohmann::json header;  // tensor name -> {dtype, shape, data_offsets}, plus "__metadata__"
  uint64_t data_bytes = 0;
  std::string data;       // the data section
};
SafetensorsHeader parse_safetensors(const std::string& bytes);

// The contents of every file in `dir` (name -> bytes), to show that nothing changed.
std::map<std::string, std::string> snapshot(const std::string& dir);

}  // namespace ag::tools::testing
