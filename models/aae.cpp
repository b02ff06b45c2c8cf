// The adversarial autoencoder; see models/aae.h.
#include "models/aae.h"

#include <fmt/format.h>

#include "models/variants.h"

namespace ag::models {

AdversarialAutoencoder::AdversarialAutoencoder(const ModelConfig& config, Device device, DType dtype)
    : Model(config, device, dtype) {
  std::vector<int> down = config_.sizes, up(down.rbegin(), down.rend());
  encoder_ = BatchNormMlp(params_, "encoder", down);
  decoder_ = BatchNormMlp(params_, "decoder", up);
  adversary_ = BatchNormMlp(params_, "adversary", {code_dim(), 16, 1});
}

std::vector<Phase> AdversarialAutoencoder::phases() {
  std::vector<int> autoencoder = encoder_.params();
  for (int i : decoder_.params()) autoencoder.push_back(i);
  return {Phase{"train", autoencoder, false}};
}

std::vector<Player> AdversarialAutoencoder::players() const { return {Player{"adversary", adversary_.params()}}; }

Value AdversarialAutoencoder::loss(GraphParams& p, const Batch& batch, int) {
  Value z = encoder_(p, training_input(p, batch), batch.mode);
  auto says_prior = [&](Value code, float target) {  // BCE of D's verdict against "from the prior"
    Value verdict = adversary_(p, code, batch.mode);
    return bce_with_logits(verdict, constant(p.graph(), target, verdict.shape(), verdict.dtype()));
  };
  if (batch.minimise) {  // training: the adversary's step first
    Value prior = normal(batch.step, z.shape(), config_.seed);
    batch.minimise(0, says_prior(prior, 1) + says_prior(stop_gradient(z), 0));
  }
  // Against the adversary just updated: the encoder is rewarded for codes D takes for the prior.
  return bce_with_logits(decoder_(p, z, batch.mode), batch.x) + says_prior(z, 1);
}

Value AdversarialAutoencoder::encode(GraphParams& p, Value x) { return encoder_(p, x, Mode::eval); }

Value AdversarialAutoencoder::logits(GraphParams& p, Value x, int) { return decoder_(p, encode(p, x), Mode::eval); }

std::vector<float> AdversarialAutoencoder::codes(const float* images, int64_t n) {
  return map_rows(*this, images, n, input_dim(), [&](GraphParams& p, Value x) { return encode(p, x); });
}

std::vector<float> AdversarialAutoencoder::prior(int64_t n, double std, uint64_t seed) {
  return normal_rows(*this, n, code_dim(), std, seed);
}

std::vector<float> AdversarialAutoencoder::decode(const std::vector<float>& z) {
  const int64_t n = int64_t(z.size()) / code_dim();
  return map_rows(*this, z.data(), n, code_dim(),
                  [&](GraphParams& p, Value c) { return sigmoid(decoder_(p, c, Mode::eval)); });
}

std::unique_ptr<Model> make_aae(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<AdversarialAutoencoder>(config, device, dtype);
}

}  // namespace ag::models
