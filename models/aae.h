// The adversarial autoencoder (Makhzani et al. 2016, as Kaixhin/Autoencoders' AAE): a
// deterministic encoder to a code z, a Bernoulli decoder, and an adversary D telling codes from
// draws of the prior N(0, I). Each training step first trains D with its own optimiser on
// BCE-with-logits(D(z_prior), 1) + BCE-with-logits(D(stop_gradient(z)), 0), then the encoder and
// decoder on the per-pixel BCE + BCE-with-logits(D(z), 1) against the updated D: two players,
// two optimisers, one compiled step. Sizes {784, 128, 64, 2}; D is code-16-1; every hidden layer
// is Linear, BatchNorm1d, ReLU.
#pragma once
#include <vector>

#include "models/model.h"

namespace ag::models {

class AdversarialAutoencoder final : public Model {
 public:
  AdversarialAutoencoder(const ModelConfig& config, Device device, DType dtype);

  std::vector<Phase> phases() override;            // "train": the encoder and decoder
  std::vector<Player> players() const override;    // "adversary": D, trained first each step
  Value loss(GraphParams& p, const Batch& batch, int phase) override;
  Value logits(GraphParams& p, Value x, int phase = -1) override;
  Value encode(GraphParams& p, Value x) override;  // z, batch norm on its running statistics

  // The codes of n images (n x code, row-major), and the images (n x input) decoded from n codes.
  std::vector<float> codes(const float* images, int64_t n);
  std::vector<float> decode(const std::vector<float>& codes);

 private:
  BatchNormMlp encoder_, decoder_, adversary_;
};

}  // namespace ag::models
