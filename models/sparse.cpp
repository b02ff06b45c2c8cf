// The sparse autoencoder (UFLDL): reconstruction + beta * sum_j KL(rho || rho_hat_j), rho_hat_j
// the batch mean of code unit j, plus an optional L1 penalty l1 * mean_batch sum_j |h_j|.
#include <cmath>

#include "models/autoencoder.h"
#include "models/variants.h"

namespace ag::models {

namespace {

class Sparse final : public Autoencoder {
 public:
  using Autoencoder::Autoencoder;

  Value objective(GraphParams& p, const Batch& batch) override {
    Value h = encode(p, training_input(p, batch));
    Value total = reconstruction_loss(decoder_(p, h), batch.x);
    if (config_.beta > 0) total = total + kl_sparsity(h) * float(config_.beta);
    if (config_.l1 > 0) total = total + sum(abs(h)) * float(config_.l1 / double(h.shape()[0]));
    return total;
  }

 private:
  // sum_j rho log(rho / rho_hat_j) + (1 - rho) log((1 - rho) / (1 - rho_hat_j)); rho_hat is
  // kept inside (0, 1) so a saturated unit gives a large, finite penalty.
  Value kl_sparsity(Value h) const {
    const float rho = float(config_.rho);
    Value rho_hat = clamp(mean(h, 0), 1e-6f, 1.0f - 1e-6f);
    Value per_unit = (std::log(rho) - log(rho_hat)) * rho + (std::log(1.0f - rho) - log(1.0f - rho_hat)) * (1.0f - rho);
    return sum(per_unit);
  }
};

}  // namespace

std::unique_ptr<Model> make_sparse(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<Sparse>(config, device, dtype);
}

}  // namespace ag::models
