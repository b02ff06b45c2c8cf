// The stacked autoencoder (Bengio et al. 2007): greedy layer-wise pretraining, block k trained
// to reconstruct the codes of block k - 1 with the blocks below frozen, then the encoders
// stacked under the decoders in reverse and fine-tuned end to end on the pixels; optionally a
// softmax head on the top code fine-tuned with labels. Any depth (sizes {784, 128, 64} default).
#include <fmt/format.h>

#include "models/model.h"
#include "models/variants.h"

namespace ag::models {

namespace {

class Stacked final : public Model {
 public:
  Stacked(const ModelConfig& config, Device device, DType dtype) : Model(config, device, dtype) {
    const std::vector<int>& s = config_.sizes;
    for (size_t k = 0; k + 1 < s.size(); ++k) {
      encoders_.emplace_back(params_, fmt::format("block{}.encoder", k), s[k], s[k + 1]);
      decoders_.emplace_back(params_, fmt::format("block{}.decoder", k), s[k + 1], s[k]);
    }
    if (config_.classes > 0) head_ = Linear(params_, "head", s.back(), config_.classes);
  }

  int blocks() const { return int(encoders_.size()); }
  int classes() const override { return config_.classes; }

  // pretrain-1 .. pretrain-L, finetune, then classify when there is a head.
  std::vector<Phase> phases() override {
    std::vector<Phase> out;
    std::vector<int> stack;
    for (int k = 0; k < blocks(); ++k) {
      Phase ph{fmt::format("pretrain-{}", k + 1), encoders_[size_t(k)].params(), false};
      for (int i : decoders_[size_t(k)].params()) ph.trainable.push_back(i);
      stack.insert(stack.end(), ph.trainable.begin(), ph.trainable.end());
      out.push_back(ph);
    }
    out.push_back(Phase{"finetune", stack, false});
    if (config_.classes > 0) {
      std::vector<int> tuned;
      for (const Linear& e : encoders_)
        for (int i : e.params()) tuned.push_back(i);
      for (int i : head_.params()) tuned.push_back(i);
      out.push_back(Phase{"classify", tuned, true});
    }
    return out;
  }

  Value loss(GraphParams& p, const Batch& batch, int phase) override {
    Value x = training_input(p, batch);  // --gaussian-noise: every phase reads the noisy images
    if (phase < blocks() && phase > 0) {  // block k against the codes below it
      Value codes = encode_to(p, x, phase);
      Value out = decoders_[size_t(phase)](p, dense(p, encoders_[size_t(phase)], codes, config_.activation));
      // Sigmoid codes lie in (0, 1) and are matched like pixels; other codes by squared error.
      return config_.activation == "sigmoid" ? bce_with_logits(out, codes) : mse(out, codes);
    }
    if (phase == blocks() + 1) return cross_entropy(classify(p, x), batch.labels);
    Value z = logits(p, x, phase);
    return config_.loss == "mse" ? mse(sigmoid(z), batch.x) : bce_with_logits(z, batch.x);
  }

  // Through blocks 0..top and back down; phase < 0 or past pretraining: the whole stack.
  Value logits(GraphParams& p, Value x, int phase = -1) override {
    const int top = phase >= 0 && phase < blocks() ? phase : blocks() - 1;
    Value z = encode_to(p, x, top + 1);
    for (int k = top; k > 0; --k) z = dense(p, decoders_[size_t(k)], z, config_.activation);
    return decoders_[0](p, z);
  }

  Value encode(GraphParams& p, Value x) override { return encode_to(p, x, blocks()); }

  Value classify(GraphParams& p, Value x) override {
    return config_.classes > 0 ? head_(p, encode(p, x)) : Value{};
  }

 private:
  // The code after the first `depth` encoders.
  Value encode_to(GraphParams& p, Value x, int depth) const {
    for (int k = 0; k < depth; ++k) x = dense(p, encoders_[size_t(k)], x, config_.activation);
    return x;
  }

  std::vector<Linear> encoders_, decoders_;
  Linear head_;
};

}  // namespace

std::unique_ptr<Model> make_stacked(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<Stacked>(config, device, dtype);
}

}  // namespace ag::models
