// The contractive autoencoder: reconstruction + lambda * mean_batch ||J_f(x)||_F^2, the penalty
// in closed form for sigmoid encoders and through double backward for any other.
#include "models/contractive.h"

#include <fmt/format.h>

#include "models/autoencoder.h"
#include "models/variants.h"

namespace ag::models {

Value contractive_closed_form(Value h, Value weight) {
  const int64_t units = h.shape()[1];
  Value slope = h * (1.0f - h);                                    // sigmoid'(a)
  Value row_norms = reshape(sum(square(weight), 1), Shape{units, 1});  // sum_i W_ji^2, [H, 1]
  return mean(matmul(square(slope), row_norms));                   // mean over the batch
}

Value contractive_exact(Value h, Value x) {
  const int64_t batch = h.shape()[0], units = h.shape()[1];
  Value total;
  for (int64_t j = 0; j < units; ++j) {
    HostTensor unit(Shape{units}, h.dtype());
    for (int64_t k = 0; k < units; ++k) unit.set(k, k == j ? 1.0 : 0.0);
    Value pick_j = broadcast_to(constant(*h.graph, unit), h.shape());
    Value row_grads = grad(h, {x}, pick_j)[0];  // row b: d h_bj / d x_b
    Value term = sum(square(row_grads));
    total = total.valid() ? total + term : term;
  }
  return total * float(1.0 / double(batch));
}

Value contractive_projection(Value h, Value x, Value step, uint64_t seed, int draws) {
  const int64_t batch = h.shape()[0];
  Value total;
  for (int d = 0; d < draws; ++d) {
    Value v = normal(step, h.shape(), seed);
    Value term = sum(square(grad(h, {x}, v)[0]));  // ||J^T v||^2 per example, summed
    total = total.valid() ? total + term : term;
  }
  return total * float(1.0 / (double(batch) * draws));
}

namespace {

class Contractive final : public Autoencoder {
 public:
  using Autoencoder::Autoencoder;

  Value objective(GraphParams& p, const Batch& batch) override {
    Value h = encode(p, training_input(p, batch));
    Value reconstruction = reconstruction_loss(decoder_(p, h), batch.x);
    return reconstruction + penalty(p, batch, h) * float(config_.lambda);
  }

 private:
  Value penalty(GraphParams& p, const Batch& b, Value h) const {
    if (config_.jacobian == "closed") return contractive_closed_form(h, p[encoder_.weight()]);
    if (config_.jacobian == "exact") return contractive_exact(h, b.x);
    return contractive_projection(h, b.x, b.step, config_.seed, config_.projections);
  }
};

}  // namespace

std::unique_ptr<Model> make_contractive(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<Contractive>(config, device, dtype);
}

}  // namespace ag::models
