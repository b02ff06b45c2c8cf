// The deep autoencoder (Hinton & Salakhutdinov 2006): 784-1000-500-250-30 with a linear code
// layer and a mirror decoder, every hidden layer with the configured activation, trained end to
// end (no pretraining). Tied weights make each decoder layer the transpose of its encoder twin.
// config.classes > 0 adds a softmax head on the code, fine-tuned with the encoder on labels.
#include <fmt/format.h>

#include "models/model.h"
#include "models/variants.h"

namespace ag::models {

namespace {

class Deep final : public Model {
 public:
  Deep(const ModelConfig& config, Device device, DType dtype) : Model(config, device, dtype) {
    const std::vector<int>& s = config_.sizes;
    const size_t layers = s.size() - 1;
    for (size_t k = 0; k < layers; ++k) encoders_.emplace_back(params_, fmt::format("encoder{}", k), s[k], s[k + 1]);
    for (size_t k = layers; k-- > 0;) {  // decoder k maps s[k + 1] back to s[k]
      std::string name = fmt::format("decoder{}", k);
      decoders_.push_back(config_.tied ? Linear::tied_to(params_, name, encoders_[k]) : Linear(params_, name, s[k + 1], s[k]));
    }
    if (config_.classes > 0) head_ = Linear(params_, "head", s.back(), config_.classes);
  }

  int classes() const override { return config_.classes; }

  // With a head: "train" (the autoencoder), then "classify" (encoder and head on the labels).
  std::vector<Phase> phases() override {
    if (config_.classes <= 0) return Model::phases();
    std::vector<int> encoder;
    for (const Linear& e : encoders_)
      for (int i : e.params()) encoder.push_back(i);
    return classifier_phases(*this, head_.params(), encoder);
  }

  Value classify(GraphParams& p, Value x) override { return config_.classes > 0 ? head_(p, encode(p, x)) : Value{}; }

  Value encode(GraphParams& p, Value x) override {
    for (size_t k = 0; k < encoders_.size(); ++k)
      x = k + 1 == encoders_.size() ? encoders_[k](p, x) : dense(p, encoders_[k], x, config_.activation);  // linear code
    return x;
  }

  Value logits(GraphParams& p, Value x, int = -1) override {
    Value z = encode(p, x);
    for (size_t k = 0; k + 1 < decoders_.size(); ++k) z = dense(p, decoders_[k], z, config_.activation);
    return decoders_.back()(p, z);
  }

  Value loss(GraphParams& p, const Batch& batch, int phase) override {
    if (phase == 1 && config_.classes > 0) return cross_entropy(classify(p, batch.x), batch.labels);
    Value z = logits(p, training_input(p, batch));
    return config_.loss == "mse" ? mse(sigmoid(z), batch.x) : bce_with_logits(z, batch.x);
  }

 private:
  std::vector<Linear> encoders_, decoders_;  // decoders_ in the order they run (code first)
  Linear head_;                              // [classes, code] when config.classes > 0
};

}  // namespace

std::unique_ptr<Model> make_deep(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<Deep>(config, device, dtype);
}

}  // namespace ag::models
