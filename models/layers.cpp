// GraphParams, Linear and the small compositions (log-softmax, cross-entropy) several
// variants share.
#include "models/layers.h"

#include <cmath>

#include <fmt/format.h>

namespace ag::models {

Value GraphParams::operator[](int index) {
  if (index < 0 || index >= store_->count())
    throw Error(fmt::format("GraphParams: parameter index {} is outside 0..{}", index, store_->count() - 1));
  if (leaves_.size() < size_t(store_->count())) leaves_.resize(size_t(store_->count()));
  Value& leaf = leaves_[size_t(index)];
  if (!leaf.valid()) leaf = store_->value(*graph_, index);
  return leaf;
}

std::vector<Value> GraphParams::leaves(const std::vector<int>& indices) {
  std::vector<Value> out;
  out.reserve(indices.size());
  for (int i : indices) out.push_back((*this)[i]);
  return out;
}

Linear::Linear(ParamStore& store, const std::string& name, int in, int out, bool bias) : in_(in), out_(out) {
  if (in <= 0 || out <= 0) throw Error(fmt::format("Linear '{}': sizes must be positive, not {} -> {}", name, in, out));
  const float bound = 1.0f / std::sqrt(float(in));
  weight_ = store.add(name + ".weight", Shape{out, in}, Init::Uniform(-bound, bound));
  if (bias) bias_ = store.add(name + ".bias", Shape{out}, Init::Uniform(-bound, bound));
}

Linear Linear::tied_to(ParamStore& store, const std::string& name, const Linear& encoder, bool bias) {
  Linear d;
  d.in_ = encoder.out_;
  d.out_ = encoder.in_;
  d.weight_ = encoder.weight_;
  d.tied_ = true;
  const float bound = 1.0f / std::sqrt(float(d.in_));  // PyTorch's rule: the decoder's fan-in
  if (bias) d.bias_ = store.add(name + ".bias", Shape{d.out_}, Init::Uniform(-bound, bound));
  return d;
}

Value Linear::operator()(GraphParams& p, Value x) const {
  if (weight_ < 0) throw Error("Linear: the layer was never declared (default-constructed)");
  Value b = bias_ >= 0 ? p[bias_] : Value{};
  // Tied: the encoder's W is [in_enc, out_enc] = [out, in] of this layer read transposed, so
  // x W (no flags) is x (W^T)^T, the decoder's product.
  if (tied_) return matmul(x, p[weight_], false, false, b);
  return linear(x, p[weight_], b);
}

std::vector<int> Linear::params() const {
  std::vector<int> out;
  if (!tied_) out.push_back(weight_);
  if (bias_ >= 0) out.push_back(bias_);
  return out;
}

namespace {

// Weight and bias of a convolution layer, both U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void declare_conv(ParamStore& store, const std::string& name, Shape weight, int64_t fan_in, int64_t channels,
                  int& weight_index, int& bias_index) {
  if (fan_in <= 0 || channels <= 0 || weight.numel() <= 0)
    throw Error(fmt::format("convolution '{}': channels and kernel must be positive, not weight {}", name, weight.str()));
  const float bound = 1.0f / std::sqrt(float(fan_in));
  weight_index = store.add(name + ".weight", weight, Init::Uniform(-bound, bound));
  bias_index = store.add(name + ".bias", Shape{channels}, Init::Uniform(-bound, bound));
}

}  // namespace

Conv2d::Conv2d(ParamStore& store, const std::string& name, int in, int out, int kernel, int stride, int padding)
    : stride_(stride), padding_(padding) {
  declare_conv(store, name, Shape{out, in, kernel, kernel}, int64_t(in) * kernel * kernel, out, weight_, bias_);
}

Value Conv2d::operator()(GraphParams& p, Value x) const {
  if (weight_ < 0) throw Error("Conv2d: the layer was never declared (default-constructed)");
  return conv2d(x, p[weight_], p[bias_], stride_, padding_);
}

ConvTranspose2d::ConvTranspose2d(ParamStore& store, const std::string& name, int in, int out, int kernel, int stride,
                                 int padding, int output_padding)
    : stride_(stride), padding_(padding), output_padding_(output_padding) {
  declare_conv(store, name, Shape{in, out, kernel, kernel}, int64_t(out) * kernel * kernel, out, weight_, bias_);
}

Value ConvTranspose2d::operator()(GraphParams& p, Value x) const {
  if (weight_ < 0) throw Error("ConvTranspose2d: the layer was never declared (default-constructed)");
  return conv_transpose2d(x, p[weight_], p[bias_], stride_, padding_, output_padding_);
}

Value log_softmax(Value z) {
  const Shape& s = z.shape();
  if (s.rank != 2) throw Error(fmt::format("log_softmax: logits must be [B, C], not {}", s.str()));
  return ag::log_softmax(z, 1);  // the core's stable logsumexp: shifted by the row maximum
}

Value cross_entropy(Value z, Value one_hot) {
  if (z.shape() != one_hot.shape())
    throw Error(fmt::format("cross_entropy: logits {} and targets {} differ", z.shape().str(), one_hot.shape().str()));
  return -(sum(log_softmax(z) * one_hot) * float(1.0 / double(z.shape()[0])));
}

}  // namespace ag::models
