// The one-hidden-layer autoencoder the denoising, contractive and sparse variants build on:
// h = act(x W1^T + b1), logits = h W2^T + b2 (or h W1 + b2 when tied), x_hat = sigmoid(logits).
// A variant overrides loss() and adds its corruption or penalty to reconstruction_loss().
#pragma once
#include "models/model.h"

namespace ag::models {

class Autoencoder : public Model {
 public:
  Autoencoder(const ModelConfig& config, Device device, DType dtype);

  Value loss(GraphParams& p, const Batch& batch, int phase) override;  // reconstruction of x
  Value logits(GraphParams& p, Value x, int phase = -1) override;
  Value encode(GraphParams& p, Value x) override;

  const Linear& encoder() const { return encoder_; }
  const Linear& decoder() const { return decoder_; }

 protected:
  // bce: BCE on the logits (bce_with_logits, mean per element); mse: mean squared error of
  // sigmoid(logits) against the target.
  Value reconstruction_loss(Value logits, Value target) const;

  Linear encoder_, decoder_;
};

}  // namespace ag::models
