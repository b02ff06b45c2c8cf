// How useful a code is: the codes a model gives a data set, and a linear (softmax) classifier
// trained on them with the graph API (one linear layer, log-softmax cross-entropy, Adam),
// whose test error says how linearly separable the classes are in code space.
#pragma once
#include <cstdint>
#include <vector>

#include "graph/tensor.h"
#include "models/model.h"

namespace ag::tools {

// The model's deterministic code of each of n images: n x code_dim, row-major.
std::vector<float> compute_codes(models::Model& model, const float* images, int64_t n);

struct LabelledCodes {
  const float* codes = nullptr;  // n x dim
  const uint8_t* labels = nullptr;
  int64_t n = 0;
};

struct ProbeConfig {
  int epochs = 10;
  int batch = 256;   // at most; a set of n < 20 batch examples uses n / 20, for 20 steps an epoch
  double lr = 0.01;  // Adam
  uint64_t seed = 0;
};

struct ProbeResult {
  double train_error = 0, test_error = 0;  // fractions misclassified
};

// Trains softmax(W z + b) on `train` (features centred with the training mean and scaled by
// the training codes' RMS) and measures both errors. Labels must be < classes.
ProbeResult linear_probe(const LabelledCodes& train, const LabelledCodes& test, int dim, int classes,
                         const ProbeConfig& config, Device device);

}  // namespace ag::tools
