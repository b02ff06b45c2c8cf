// The training images a benchmark runs on: real MNIST, found the way ae-train finds it
// (--data DIR, then $AEGRAPH_DATA, then ./data/mnist), or synthetic images of the same shape
// when no files should be needed (tests, quick checks). Synthetic pixels are ~80% zeros and
// the rest uniform in (0, 1], like MNIST's, so no kernel sees an unusually easy input.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/trainer.h"

namespace ag::bench {

struct BenchData {
  std::vector<float> images;     // n x dim, row-major, in [0, 1]
  std::vector<uint8_t> labels;   // n (synthetic: 0..9 by hash)
  int64_t n = 0;
  int dim = 0;
  std::string description;       // "MNIST train (60000 x 784) from DIR" / "synthetic ..."
  std::string dir;               // the data folder, "" for synthetic data

  models::DataView view() const { return models::DataView{images.data(), n, dim, labels.data()}; }
};

// n images of dim pixels, a pure function of seed.
BenchData synthetic_data(int64_t n, int dim, uint64_t seed);

// The MNIST training set in `flag_dir` (or where ae-train would look when it is empty).
// Throws ag::io::IoError naming the folder or file.
BenchData mnist_train_data(const std::string& flag_dir);

}  // namespace ag::bench
