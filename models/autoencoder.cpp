// The plain autoencoder, under- or overcomplete (sizes {input, code}, either way round), with
// the code activation and reconstruction loss named in its config.
#include "models/autoencoder.h"

#include <algorithm>

#include "models/variants.h"

namespace ag::models {

Autoencoder::Autoencoder(const ModelConfig& config, Device device, DType dtype) : Model(config, device, dtype) {
  const int input = config_.sizes[0], code = config_.sizes[1];
  encoder_ = Linear(params_, "encoder", input, code);
  decoder_ = config_.tied ? Linear::tied_to(params_, "decoder", encoder_) : Linear(params_, "decoder", code, input);
  if (config_.classes > 0) head_ = Linear(params_, "head", code, config_.classes);
}

std::vector<Phase> Autoencoder::phases() {
  if (config_.classes <= 0) return Model::phases();
  return classifier_phases(*this, head_.params(), encoder_.params());
}

Value Autoencoder::classify(GraphParams& p, Value x) { return config_.classes > 0 ? head_(p, encode(p, x)) : Value{}; }

Value Autoencoder::encode(GraphParams& p, Value x) { return dense(p, encoder_, x, config_.activation); }

Value Autoencoder::logits(GraphParams& p, Value x, int) { return decoder_(p, encode(p, x)); }

Value Autoencoder::reconstruction_loss(Value logits, Value target) const {
  if (config_.loss == "mse") return mse(sigmoid(logits), target);
  return bce_with_logits(logits, target);
}

Value Autoencoder::objective(GraphParams& p, const Batch& batch) {
  return reconstruction_loss(logits(p, training_input(p, batch)), batch.x);
}

Value Autoencoder::loss(GraphParams& p, const Batch& batch, int phase) {
  if (phase == 1 && config_.classes > 0) return cross_entropy(classify(p, batch.x), batch.labels);
  return objective(p, batch);
}

std::vector<Phase> classifier_phases(const Model& model, const std::vector<int>& head, const std::vector<int>& encoder) {
  Phase train{"train", {}, false};
  for (int i : model.all_params())
    if (std::find(head.begin(), head.end(), i) == head.end()) train.trainable.push_back(i);
  Phase tune{"classify", encoder, true};
  tune.trainable.insert(tune.trainable.end(), head.begin(), head.end());
  return {train, tune};
}

std::unique_ptr<Model> make_autoencoder(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<Autoencoder>(config, device, dtype);
}

}  // namespace ag::models
