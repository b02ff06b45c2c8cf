// The one-hidden-layer autoencoder the denoising, contractive and sparse variants build on:
// h = act(x W1^T + b1), logits = h W2^T + b2 (or h W1 + b2 when tied), x_hat = sigmoid(logits).
// A variant overrides objective() and adds its corruption or penalty to reconstruction_loss();
// any of them takes a softmax head (config.classes) fine-tuned with labels after it.
#pragma once
#include "models/model.h"

namespace ag::models {

class Autoencoder : public Model {
 public:
  Autoencoder(const ModelConfig& config, Device device, DType dtype);

  // Phase "train": the variant's objective() over every parameter but the head. With
  // config.classes > 0 a second phase, "classify": the softmax head on the code, fine-tuned with
  // the encoder on the labels (cross-entropy of the clean images; the decoder stays as it is).
  std::vector<Phase> phases() override;
  Value loss(GraphParams& p, const Batch& batch, int phase) final;
  Value logits(GraphParams& p, Value x, int phase = -1) override;
  Value encode(GraphParams& p, Value x) override;
  Value classify(GraphParams& p, Value x) override;
  int classes() const override { return config_.classes; }

  const Linear& encoder() const { return encoder_; }
  const Linear& decoder() const { return decoder_; }

 protected:
  // The unsupervised objective: reconstruction of x, plus the variant's corruption or penalty.
  virtual Value objective(GraphParams& p, const Batch& batch);
  // bce: BCE on the logits (bce_with_logits, mean per element); mse: mean squared error of
  // sigmoid(logits) against the target.
  Value reconstruction_loss(Value logits, Value target) const;

  Linear encoder_, decoder_;
  Linear head_;  // [classes, code] when config.classes > 0
};

}  // namespace ag::models
