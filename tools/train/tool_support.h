// What ae-train and ae-eval share around the models: one error line per failure and the exit
// code that goes with it, command-line parsing with CLI11 whose errors also fit on one line,
// finding and loading the data (checked against the model's input size), choosing the device.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "models/trainer.h"
#include "ops/op.h"
#include "tools/io/idx.h"

namespace ag::tools {

// A bad command line (unknown flag, value out of range, flags that contradict each other or a
// saved run). The message names the flag. Exit code 2; every other failure exits with 1.
class UsageError : public ag::Error {
 public:
  using ag::Error::Error;
};

// Runs a tool's body: parses argv with `app` (--help prints and returns 0), then calls `body`.
// Any failure is printed as one line "<tool>: <message>" on stderr, never a crash.
int run_tool(const std::string& tool, CLI::App& app, int argc, char** argv, const std::function<int()>& body);

// Where the data is and how it is loaded: the --data / --mirror / --limit flags.
struct DataSource {
  std::string dir;     // --data: "" searches $AEGRAPH_DATA, then ./data/mnist (downloading into it)
  std::string mirror;  // --mirror URL: "" uses the public mirrors
  int64_t limit = -1;  // keep the first `limit` training images; -1: all
};

struct LoadedData {
  io::Mnist mnist;
  std::string note;  // what locating it did (a download, the Fashion-MNIST fallback), or ""
};

// Locates and loads the train and test sets; both must have `input_size` pixels per image.
// Throws naming the file; a size mismatch also names `size_origin` (the flag that set it).
LoadedData load_data(const DataSource& source, int input_size, const std::string& size_origin = "--sizes");

models::DataView data_view(const io::Dataset& set);

// "cpu" or "cuda" (checked: a CUDA build with a GPU present) and the CPU thread count (0: all).
Device select_device(const std::string& device, int threads);

}  // namespace ag::tools
