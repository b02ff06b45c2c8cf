// The denoising autoencoder (Vincent et al. 2008): reconstruct the CLEAN input from a corrupted
// copy. Masking, salt-and-pepper and Gaussian noise are random graph ops keyed by the step
// counter; the affine corruption (rotate, rescale, shift) has no graph op and is done on the
// host while the batch is prepared (models/data.h).
#include <fmt/format.h>

#include "models/autoencoder.h"
#include "models/data.h"
#include "models/variants.h"

namespace ag::models {

Value corrupt(const ModelConfig& config, const Batch& b) { return corrupt(config, b, config.noise, config.noise_level); }

Value corrupt(const ModelConfig& config, const Batch& b, const std::string& noise, double level) {
  const Shape& s = b.x.shape();
  const float v = float(level);
  const uint64_t seed = config.seed;
  if (noise == "mask") return b.x * bernoulli(b.step, s, seed, 1.0f - v);  // zero with probability v
  if (noise == "salt_pepper") {  // with probability v a pixel becomes 0 or 1, equally likely
    Value hit = bernoulli(b.step, s, seed, v), salt = bernoulli(b.step, s, seed, 0.5f);
    return b.x * (1.0f - hit) + hit * salt;
  }
  if (noise == "gaussian") {
    Value draws = normal(b.step, s, seed, 0.0f, v);
    return b.x + (b.noise_scale.valid() ? draws * b.noise_scale : draws);
  }
  if (!b.corrupted.valid())
    throw Error(fmt::format("{}: affine noise needs the host-corrupted batch (Batch::corrupted)", config.kind));
  return b.corrupted;
}

void corrupt_affine(const ModelConfig& config, const float* clean, float* out, int64_t rows, int dim, int64_t step) {
  int side = 0;
  while (side * side < dim) ++side;
  AffineRange range{config.affine_rotate_deg, config.affine_scale, config.affine_shift_px};
  affine_augment(clean, out, rows, side, range, config.seed, uint64_t(step));
}

namespace {

class Denoising final : public Autoencoder {
 public:
  using Autoencoder::Autoencoder;

  Value objective(GraphParams& p, const Batch& batch) override {
    return reconstruction_loss(logits(p, training_input(p, batch)), batch.x);
  }
  Value corrupted(GraphParams&, const Batch& batch) override { return corrupt(config_, batch); }

  bool corrupts_on_host() const override { return config_.noise == "affine"; }

  void corrupt_on_host(const float* clean, float* out, int64_t rows, int dim, int64_t step) const override {
    corrupt_affine(config_, clean, out, rows, dim, step);
  }
};

}  // namespace

std::unique_ptr<Model> make_denoising(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<Denoising>(config, device, dtype);
}

}  // namespace ag::models
