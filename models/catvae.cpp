// The categorical VAE (Jang, Gu & Poole 2017, as Kaixhin/Autoencoders' CatVAE): the encoder's
// logits are G groups of 10 categories; training decodes a Gumbel-softmax sample
// y = softmax((logits + g) / tau) per group, g = -log(-log(u + 1e-9) + 1e-9), u ~ U(0, 1), with
// the temperature tau = max(1 - 0.0002 t, 0.5) annealed over the trainer's step counter t. The
// loss per image is the BCE summed over pixels plus KL(softmax(logits) || uniform) summed over
// the groups. Evaluation decodes softmax(logits / 0.5), no noise, batch norm on its running
// statistics. Sizes {784, 128, 64, 50}: batch-normalised ReLU layers both ways.
#include <algorithm>
#include <cmath>

#include "models/variants.h"

namespace ag::models {
namespace {

constexpr int categories = 10;
constexpr float tau_end = 0.5f, anneal_rate = 0.0002f;

class CategoricalVae final : public Model, public Generative {
 public:
  CategoricalVae(const ModelConfig& config, Device device, DType dtype) : Model(config, device, dtype) {
    std::vector<int> down = config_.sizes, up(down.rbegin(), down.rend());
    encoder_ = BatchNormMlp(params_, "encoder", down);
    decoder_ = BatchNormMlp(params_, "decoder", up);
  }

  Value loss(GraphParams& p, const Batch& batch, int) override {
    Value logits = encoder_(p, training_input(p, batch), batch.mode);
    Value y;
    if (batch.mode == Mode::train) {
      Value u = uniform(batch.step, logits.shape(), config_.seed);
      Value gumbel = -log(-log(u + 1e-9f) + 1e-9f);
      // max(1 - rate t, tau_end) as tau_end + relu(1 - tau_end - rate t): the graph has no max.
      Value tau = relu(batch.step * -anneal_rate + (1.0f - tau_end)) + tau_end;
      y = relaxed(logits + gumbel, tau);
    } else {
      y = relaxed(logits / tau_end, {});
    }
    // bce_with_logits is the mean over B x D elements; times D it is the per-image sum.
    Value reconstruction = bce_with_logits(decoder_(p, y, batch.mode), batch.x) * float(input_dim());
    return reconstruction + kl_to_uniform(logits);
  }

  Value encode(GraphParams& p, Value x) override { return relaxed(encoder_(p, x, Mode::eval) / tau_end, {}); }
  Value logits(GraphParams& p, Value x, int) override { return decoder_(p, encode(p, x), Mode::eval); }

  // Generative. The prior: one category per group, uniformly (the arg-max of i.i.d. noise);
  // std does not apply. Re-encoding draws each group's category from softmax(logits) by the
  // Gumbel-max trick; both give one-hot codes, the limit the annealed temperature heads for.
  std::vector<float> prior(int64_t n, double, uint64_t seed) override {
    return one_hot_argmax(normal_rows(*this, n, code_dim(), 1.0, seed));  // i.i.d. noise: each arg-max equally likely
  }
  std::vector<float> decode(const std::vector<float>& y) override {
    return map_rows(*this, y.data(), int64_t(y.size()) / code_dim(), code_dim(),
                    [&](GraphParams& p, Value c) { return sigmoid(decoder_(p, c, Mode::eval)); });
  }
  std::vector<float> reencode(const std::vector<float>& images, uint64_t seed, int64_t step) override {
    return one_hot_argmax(map_rows(*this, images.data(), int64_t(images.size()) / input_dim(), input_dim(),
                                   [&](GraphParams& p, Value x) {
                                     Value logits = encoder_(p, x, Mode::eval);
                                     Value u = uniform(constant(p.graph(), double(step), Shape{}, dtype()), logits.shape(), seed);
                                     return logits - log(-log(u + 1e-9f) + 1e-9f);
                                   }));
  }

 private:
  // One-hot rows: 1 at each group's largest value (the first on ties), 0 elsewhere.
  static std::vector<float> one_hot_argmax(const std::vector<float>& v) {
    std::vector<float> out(v.size(), 0.0f);
    for (size_t at = 0; at < v.size(); at += categories)
      out[size_t(std::max_element(v.begin() + ptrdiff_t(at), v.begin() + ptrdiff_t(at + categories)) - v.begin())] = 1.0f;
    return out;
  }
  // softmax(z / tau) within each group of `categories`, back as [B, code].
  Value relaxed(Value z, Value tau) const {
    if (tau.valid()) z = z / tau;
    return reshape(softmax(grouped(z), 2), z.shape());
  }
  static Value grouped(Value z) {
    const int64_t b = z.shape()[0], code = z.shape()[1];
    return reshape(z, Shape{b, code / categories, categories});
  }
  // sum over groups of KL(q || uniform) = sum_k q_k log q_k + log K, mean over the batch.
  static Value kl_to_uniform(Value logits) {
    Value log_q = log_softmax(grouped(logits), 2);
    const int64_t b = logits.shape()[0], groups = logits.shape()[1] / categories;
    return sum(exp(log_q) * log_q) * float(1.0 / double(b)) + float(double(groups) * std::log(double(categories)));
  }

  BatchNormMlp encoder_, decoder_;
};

}  // namespace

std::unique_ptr<Model> make_catvae(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<CategoricalVae>(config, device, dtype);
}

}  // namespace ag::models
