// The plain autoencoder, under- or overcomplete (sizes {input, code}, either way round), with
// the code activation and reconstruction loss named in its config.
#include "models/autoencoder.h"

#include "models/variants.h"

namespace ag::models {

Autoencoder::Autoencoder(const ModelConfig& config, Device device, DType dtype) : Model(config, device, dtype) {
  const int input = config_.sizes[0], code = config_.sizes[1];
  encoder_ = Linear(params_, "encoder", input, code);
  decoder_ = config_.tied ? Linear::tied_to(params_, "decoder", encoder_) : Linear(params_, "decoder", code, input);
}

Value Autoencoder::encode(GraphParams& p, Value x) { return dense(p, encoder_, x, config_.activation); }

Value Autoencoder::logits(GraphParams& p, Value x, int) { return decoder_(p, encode(p, x)); }

Value Autoencoder::reconstruction_loss(Value logits, Value target) const {
  if (config_.loss == "mse") return mse(sigmoid(logits), target);
  return bce_with_logits(logits, target);
}

Value Autoencoder::loss(GraphParams& p, const Batch& batch, int) {
  return reconstruction_loss(logits(p, training_input(p, batch)), batch.x);
}

std::unique_ptr<Model> make_autoencoder(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<Autoencoder>(config, device, dtype);
}

}  // namespace ag::models
