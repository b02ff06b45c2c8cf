// The denoising autoencoder (Vincent et al. 2008): reconstruct the CLEAN input from a corrupted
// copy. Masking, salt-and-pepper and Gaussian noise are random graph ops keyed by the step
// counter; the affine corruption (rotate, rescale, shift) has no graph op and is done on the
// host while the batch is prepared (models/data.h).
#include <fmt/format.h>

#include "models/autoencoder.h"
#include "models/data.h"
#include "models/variants.h"

namespace ag::models {

namespace {

class Denoising final : public Autoencoder {
 public:
  using Autoencoder::Autoencoder;

  Value loss(GraphParams& p, const Batch& batch, int) override {
    return reconstruction_loss(logits(p, corrupt(batch)), batch.x);
  }

  bool corrupts_on_host() const override { return config_.noise == "affine"; }

  void corrupt_on_host(const float* clean, float* out, int64_t rows, int dim, int64_t step) const override {
    int side = 0;
    while (side * side < dim) ++side;
    AffineRange range{config_.affine_rotate_deg, config_.affine_scale, config_.affine_shift_px};
    affine_augment(clean, out, rows, side, range, config_.seed, uint64_t(step));
  }

 private:
  Value corrupt(const Batch& b) const {
    const Shape& s = b.x.shape();
    const float v = float(config_.noise_level);
    const uint64_t seed = config_.seed;
    if (config_.noise == "mask") return b.x * bernoulli(b.step, s, seed, 1.0f - v);  // zero with probability v
    if (config_.noise == "salt_pepper") {  // with probability v a pixel becomes 0 or 1, equally likely
      Value hit = bernoulli(b.step, s, seed, v), salt = bernoulli(b.step, s, seed, 0.5f);
      return b.x * (1.0f - hit) + hit * salt;
    }
    if (config_.noise == "gaussian") return b.x + normal(b.step, s, seed, 0.0f, v);
    if (!b.corrupted.valid()) throw Error("dae: affine noise needs the host-corrupted batch (Batch::corrupted)");
    return b.corrupted;
  }
};

}  // namespace

std::unique_ptr<Model> make_denoising(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<Denoising>(config, device, dtype);
}

}  // namespace ag::models
