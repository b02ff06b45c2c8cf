// The variational autoencoder, sizes {input, hidden..., latent} (784-400-20 by default, the
// PyTorch example's): ReLU hidden layers (the configured activation), mu and log-variance
// heads, a mirror decoder with logits out.
#include "models/vae.h"

#include <fmt/format.h>

#include "models/variants.h"

namespace ag::models {

VariationalAutoencoder::VariationalAutoencoder(const ModelConfig& config, Device device, DType dtype)
    : Model(config, device, dtype) {
  const std::vector<int>& s = config_.sizes;
  const size_t latent = s.size() - 1;
  for (size_t k = 0; k + 1 < latent; ++k) encoder_.emplace_back(params_, fmt::format("encoder{}", k), s[k], s[k + 1]);
  mu_ = Linear(params_, "mu", s[latent - 1], s[latent]);
  logvar_ = Linear(params_, "logvar", s[latent - 1], s[latent]);
  for (size_t k = latent; k-- > 0;) decoder_.emplace_back(params_, fmt::format("decoder{}", k), s[k + 1], s[k]);
}

VariationalAutoencoder::Gaussian VariationalAutoencoder::posterior(GraphParams& p, Value x) {
  for (const Linear& layer : encoder_) x = dense(p, layer, x, config_.activation);
  return {mu_(p, x), logvar_(p, x)};
}

Value VariationalAutoencoder::decode_logits(GraphParams& p, Value z) {
  for (size_t k = 0; k + 1 < decoder_.size(); ++k) z = dense(p, decoder_[k], z, config_.activation);
  return decoder_.back()(p, z);
}

Value VariationalAutoencoder::encode(GraphParams& p, Value x) { return posterior(p, x).mu; }

Value VariationalAutoencoder::logits(GraphParams& p, Value x, int) { return decode_logits(p, encode(p, x)); }

Value VariationalAutoencoder::loss(GraphParams& p, const Batch& batch, int) {
  Gaussian q = posterior(p, training_input(p, batch));
  Value eps = normal(batch.step, q.mu.shape(), config_.seed);
  Value z = q.mu + exp(q.logvar * 0.5f) * eps;
  // bce_with_logits is the mean over B x D elements; times D it is the per-image sum.
  Value reconstruction = bce_with_logits(decode_logits(p, z), batch.x) * float(input_dim());
  return reconstruction + kl_normal(q.mu, q.logvar);
}

std::vector<float> VariationalAutoencoder::prior(int64_t n, double std, uint64_t seed) {
  return normal_rows(*this, n, code_dim(), std, seed);
}

std::vector<float> VariationalAutoencoder::decode(const std::vector<float>& z) {
  return map_rows(*this, z.data(), int64_t(z.size()) / code_dim(), code_dim(),
                  [&](GraphParams& p, Value c) { return sigmoid(decode_logits(p, c)); });
}

std::vector<float> VariationalAutoencoder::reencode(const std::vector<float>& images, uint64_t seed, int64_t step) {
  return map_rows(*this, images.data(), int64_t(images.size()) / input_dim(), input_dim(), [&](GraphParams& p, Value x) {
    Gaussian q = posterior(p, x);
    Value eps = normal(constant(p.graph(), double(step), Shape{}, dtype()), q.mu.shape(), seed);
    return q.mu + exp(q.logvar * 0.5f) * eps;
  });
}

std::vector<float> VariationalAutoencoder::interpolate(const float* a, const float* b, int steps) {
  if (steps < 2) throw Error(fmt::format("vae interpolate: needs at least 2 steps, not {}", steps));
  const int dim = input_dim();
  std::vector<float> ends(a, a + dim);
  ends.insert(ends.end(), b, b + dim);
  HostTensor weights(Shape{steps, 2}, dtype());  // row s: (1 - s/(steps-1), s/(steps-1))
  for (int s = 0; s < steps; ++s) {
    double t = double(s) / double(steps - 1);
    weights.set(2 * s, 1.0 - t);
    weights.set(2 * s + 1, t);
  }
  return map_rows(*this, ends.data(), 2, dim, [&](GraphParams& p, Value x) {
    return sigmoid(decode_logits(p, matmul(constant(p.graph(), weights), encode(p, x))));
  });
}

std::unique_ptr<Model> make_variational(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<VariationalAutoencoder>(config, device, dtype);
}

}  // namespace ag::models
