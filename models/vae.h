// The variational autoencoder (Kingma & Welling 2014): a Gaussian encoder q(z|x) = N(mu, e^lv),
// the reparameterisation z = mu + e^(lv/2) eps, a Bernoulli decoder p(x|z), and the loss
// -ELBO per image = BCE summed over pixels + KL(q || N(0, I)). Also what pictures need:
// samples from the prior and walks through latent space.
#pragma once
#include <vector>

#include "models/model.h"

namespace ag::models {

class VariationalAutoencoder final : public Model, public Generative {
 public:
  VariationalAutoencoder(const ModelConfig& config, Device device, DType dtype);

  Value loss(GraphParams& p, const Batch& batch, int phase) override;  // nats per image
  Value logits(GraphParams& p, Value x, int phase = -1) override;      // decoded from mu
  Value encode(GraphParams& p, Value x) override;                      // mu

  Value decode_logits(GraphParams& p, Value z);  // z [B, latent] -> [B, input]

  // Generative: z ~ N(0, std^2 I); images decoded from z; z sampled from q(z|x).
  std::vector<float> prior(int64_t n, double std, uint64_t seed) override;
  std::vector<float> decode(const std::vector<float>& codes) override;
  std::vector<float> reencode(const std::vector<float>& images, uint64_t seed, int64_t step) override;
  // `steps` images decoding (1 - s) mu(a) + s mu(b), s = 0 .. 1 evenly; a, b: one image each.
  std::vector<float> interpolate(const float* a, const float* b, int steps);

 private:
  struct Gaussian {
    Value mu, logvar;
  };
  Gaussian posterior(GraphParams& p, Value x);

  std::vector<Linear> encoder_;  // hidden layers
  Linear mu_, logvar_;
  std::vector<Linear> decoder_;  // hidden layers, then the output layer
};

}  // namespace ag::models
