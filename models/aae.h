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

class AdversarialAutoencoder final : public Model, public Generative {
 public:
  AdversarialAutoencoder(const ModelConfig& config, Device device, DType dtype);

  std::vector<Phase> phases() override;            // "train": the encoder and decoder
  std::vector<Player> players() const override;    // "adversary": D, trained first each step
  Value loss(GraphParams& p, const Batch& batch, int phase) override;
  Value logits(GraphParams& p, Value x, int phase = -1) override;
  Value encode(GraphParams& p, Value x) override;  // z, batch norm on its running statistics

  // The codes of n images (n x code, row-major).
  std::vector<float> codes(const float* images, int64_t n);
  // Generative: z ~ N(0, std^2 I), the prior D learnt to tell codes from; images decoded from
  // codes; the (deterministic) codes of images.
  std::vector<float> prior(int64_t n, double std, uint64_t seed) override;
  std::vector<float> decode(const std::vector<float>& codes) override;
  std::vector<float> reencode(const std::vector<float>& images, uint64_t, int64_t) override {
    return codes(images.data(), int64_t(images.size()) / input_dim());
  }

 private:
  BatchNormMlp encoder_, decoder_, adversary_;
};

}  // namespace ag::models
