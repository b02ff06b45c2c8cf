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
  if (roots_.size() < size_t(store_->count())) roots_.resize(size_t(store_->count()));
  Value& leaf = leaves_[size_t(index)];
  if (!leaf.valid()) leaf = roots_[size_t(index)] = store_->value(*graph_, index);
  return leaf;
}

std::vector<Value> GraphParams::leaves(const std::vector<int>& indices) {
  std::vector<Value> out;
  out.reserve(indices.size());
  for (int i : indices) out.push_back((*this)[i]);
  return out;
}

Value GraphParams::update(int index, Value value) {
  (void)(*this)[index];  // makes the leaf
  Value updated = assign(roots_[size_t(index)], value);  // an assign's target is the external leaf
  updates_.push_back(updated);
  leaves_[size_t(index)] = updated;
  return updated;
}

void GraphParams::advance(int index, Value updated) {
  (void)(*this)[index];  // sizes leaves_ and checks the index
  leaves_[size_t(index)] = updated;
}

BatchNorm1d::BatchNorm1d(ParamStore& store, const std::string& name, int features) {
  if (features <= 0) throw Error(fmt::format("BatchNorm1d '{}': features must be positive, not {}", name, features));
  weight_ = store.add(name + ".weight", Shape{features}, Init::Constant(1));
  bias_ = store.add(name + ".bias", Shape{features}, Init::Zeros());
  mean_ = store.add(name + ".running_mean", Shape{features}, Init::Zeros(), false);
  var_ = store.add(name + ".running_var", Shape{features}, Init::Constant(1), false);
}

Value BatchNorm1d::operator()(GraphParams& p, Value x, Mode mode) const {
  const Shape& s = x.shape();
  if (s.rank != 2 || s.dim[1] != p.store().shape(weight_).dim[0])
    throw Error(fmt::format("BatchNorm1d '{}': input is {}, not [batch, {}]", p.store().name(weight_), s.str(),
                            p.store().shape(weight_).dim[0]));
  if (mode == Mode::train) {
    if (s.dim[0] < 2)
      throw Error(fmt::format("BatchNorm1d '{}': training needs a batch of at least 2, not {}", p.store().name(weight_), s.dim[0]));
    // The running statistics from the batch's moments (no gradient flows into them), then the
    // batch normalised by the batch_norm op: one kernel forward, two backward (ops/norm.cpp).
    const int64_t features = s.dim[1];
    Value moments = batch_moments(x);
    Value mean = reshape(slice(moments, 0, 0, 1), {features});
    Value var = reshape(slice(moments, 0, 1, 1), {features});  // biased
    const float unbias = float(double(s.dim[0]) / double(s.dim[0] - 1));
    p.update(mean_, p[mean_] * (1.0f - momentum) + mean * momentum);
    p.update(var_, p[var_] * (1.0f - momentum) + var * (momentum * unbias));
    return batch_norm(x, p[weight_], p[bias_], eps);
  }
  // The per-feature scale weight / sqrt(var + eps) is a row: one multiply-add per element.
  Value scale = p[weight_] / sqrt(p[var_] + eps);
  return (x - p[mean_]) * scale + p[bias_];
}

BatchNormMlp::BatchNormMlp(ParamStore& store, const std::string& name, const std::vector<int>& sizes) {
  if (sizes.size() < 2) throw Error(fmt::format("BatchNormMlp '{}': needs an input and an output size", name));
  for (size_t k = 0; k + 1 < sizes.size(); ++k) {
    linear_.emplace_back(store, fmt::format("{}.linear{}", name, k), sizes[k], sizes[k + 1]);
    if (k + 2 < sizes.size()) norm_.emplace_back(store, fmt::format("{}.bn{}", name, k), sizes[k + 1]);
  }
}

Value BatchNormMlp::operator()(GraphParams& p, Value x, Mode mode) const {
  for (size_t k = 0; k < norm_.size(); ++k) x = relu(norm_[k](p, linear_[k](p, x), mode));
  return linear_.back()(p, x);
}

std::vector<int> BatchNormMlp::params() const {
  std::vector<int> out;
  for (size_t k = 0; k < linear_.size(); ++k) {
    for (int i : linear_[k].params()) out.push_back(i);
    if (k < norm_.size())
      for (int i : norm_[k].params()) out.push_back(i);
  }
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
