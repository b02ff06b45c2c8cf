// The winner-take-all autoencoder with lifetime sparsity (Makhzani & Frey 2015, Kaixhin's
// WTA-AE): 784 -> 1000 ReLU -> 784 sigmoid. In training each hidden unit keeps only its
// ceil(rate x batch) largest activations over the batch (batch_topk), the rest are zeroed, so
// every unit must specialise on a few examples; the decoder learns from those alone (the
// gradient flows to the winners only). Evaluation (Mode::eval, and logits(), encode()) passes
// every activation.
#include <cmath>

#include "models/autoencoder.h"
#include "models/variants.h"

namespace ag::models {

namespace {

class Wta final : public Autoencoder {
 public:
  using Autoencoder::Autoencoder;

  Value objective(GraphParams& p, const Batch& batch) override {
    Value h = encode(p, training_input(p, batch));
    if (batch.mode == Mode::train) {
      const int64_t rows = h.shape()[0];
      h = batch_topk(h, std::max<int64_t>(1, int64_t(std::ceil(config_.wta_rate * double(rows) - 1e-9))));
    }
    return reconstruction_loss(decoder_(p, h), batch.x);
  }
};

}  // namespace

std::unique_ptr<Model> make_wta(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<Wta>(config, device, dtype);
}

}  // namespace ag::models
