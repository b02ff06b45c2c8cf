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

namespace {

// Runs a one-off plan and returns `images` as floats (any dtype).
std::vector<float> read_images(Executor& ex, Value images) {
  ex.run();
  HostTensor h = ex.read(images);
  std::vector<float> out(size_t(h.numel()));
  for (int64_t i = 0; i < h.numel(); ++i) out[size_t(i)] = float(h.at(i));
  return out;
}

}  // namespace

std::vector<float> VariationalAutoencoder::sample(int64_t n, uint64_t seed) {
  if (n <= 0) throw Error(fmt::format("vae sample: the count must be positive, not {}", n));
  Graph g;
  GraphParams p(g, params_);
  Value z = normal(constant(g, 0.0, Shape{}, dtype()), Shape{n, code_dim()}, seed);
  Value images = sigmoid(decode_logits(p, z));
  Executor ex(compile({images}), device());
  return read_images(ex, images);
}

std::vector<float> VariationalAutoencoder::interpolate(const float* a, const float* b, int steps) {
  if (steps < 2) throw Error(fmt::format("vae interpolate: needs at least 2 steps, not {}", steps));
  const int dim = input_dim();
  Graph g;
  GraphParams p(g, params_);
  Value ends = input(g, Shape{2, dim}, "ends", dtype());
  HostTensor weights(Shape{steps, 2}, dtype());  // row s: (1 - s/(steps-1), s/(steps-1))
  for (int s = 0; s < steps; ++s) {
    double t = double(s) / double(steps - 1);
    weights.set(2 * s, 1.0 - t);
    weights.set(2 * s + 1, t);
  }
  Value z = matmul(constant(g, weights), encode(p, ends));
  Value images = sigmoid(decode_logits(p, z));
  Executor ex(compile({images}), device());
  Tensor in = ex.input(ends);
  for (int i = 0; i < dim; ++i) {
    if (in.dtype == DType::f32) {
      in.ptr<float>()[i] = a[i];
      in.ptr<float>()[dim + i] = b[i];
    } else {
      in.ptr<double>()[i] = a[i];
      in.ptr<double>()[dim + i] = b[i];
    }
  }
  return read_images(ex, images);
}

std::unique_ptr<Model> make_variational(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<VariationalAutoencoder>(config, device, dtype);
}

}  // namespace ag::models
