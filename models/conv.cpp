// The convolutional autoencoders of Kaixhin/Autoencoders, on 28x28 images fed as flat rows of
// 784 pixels and reshaped to [B, 1, 28, 28]. Hidden layers use the configured activation (ReLU),
// the decoder ends in logits (reconstruction = sigmoid), the loss is BCE (or MSE) per pixel.
//   conv     (ConvAE)   conv 1-16, pool -> 15; conv 16-8, pool -> 8; conv 8-8, pool -> 4 (code 8x4x4);
//                       decoder: conv 8-8, up -> 8; conv 8-8, up -> 16; conv 8-16 unpadded (14), up -> 28;
//                       conv 16-1
//   upconv   (UpconvAE) the same encoder; decoder: transposed convs 8-8 (8), 8-16 (16), 16-1 (28)
//   convdae  (conv. DenoisingAE) conv 1-32, pool -> 15; conv 32-32, pool -> 7 (code 32x7x7);
//                       decoder: conv 32-32, up -> 14; conv 32-32, up -> 28; conv 32-1; trained on
//                       corrupted images (default: Gaussian noise of std 0.5) against the clean ones
// All convolutions are 3x3, stride 1; pools are max over 2x2, stride 2 (padding 1 where it says 15 or 8).
#include "models/model.h"
#include "models/variants.h"

namespace ag::models {

namespace {

constexpr int side = 28;

// activation(x) then a 2x2 max pool, computed pool first: max pooling commutes with every
// activation here (all are non-decreasing), so the activation and its gradient run on a quarter
// of the values. For ReLU the gradient is the same to the bit (a window whose maximum is <= 0 has
// a zero gradient either way); for the strictly increasing ones the arg-max is too, except where
// the activation rounds two inputs to one float.
Value activate_pooled(Value x, const std::string& act, int64_t padding) {
  return activation(max_pool2d(x, 2, 2, padding), act);
}

class ConvFamily : public Model {
 public:
  using Model::Model;

  Value logits(GraphParams& p, Value x, int = -1) override {
    const int64_t b = x.shape()[0];
    return reshape(decode(p, code(p, reshape(x, {b, 1, side, side}))), {b, side * side});
  }
  Value encode(GraphParams& p, Value x) override {
    const int64_t b = x.shape()[0];
    return reshape(code(p, reshape(x, {b, 1, side, side})), {b, code_dim()});
  }
  Value loss(GraphParams& p, const Batch& batch, int) override {
    Value z = logits(p, training_input(p, batch));
    return config_.loss == "mse" ? mse(sigmoid(z), batch.x) : bce_with_logits(z, batch.x);
  }

 protected:
  virtual Value code(GraphParams& p, Value images) = 0;  // [B, 1, 28, 28] -> the code's feature maps
  virtual Value decode(GraphParams& p, Value code) = 0;  // -> logits [B, 1, 28, 28]

  Value act(Value x) const { return activation(x, config_.activation); }
};

// The encoder ConvAE and UpconvAE share: three convolutions, each followed by a 2x2 max pool.
class SmallEncoder {
 public:
  explicit SmallEncoder(ParamStore& s)
      : c1_(s, "encoder0", 1, 16, 3, 1, 1), c2_(s, "encoder1", 16, 8, 3, 1, 1), c3_(s, "encoder2", 8, 8, 3, 1, 1) {}
  Value operator()(GraphParams& p, Value x, const std::string& act) const {
    x = activate_pooled(c1_(p, x), act, 1);     // 16 x 15 x 15
    x = activate_pooled(c2_(p, x), act, 1);     // 8 x 8 x 8
    return activate_pooled(c3_(p, x), act, 0);  // 8 x 4 x 4
  }

 private:
  Conv2d c1_, c2_, c3_;
};

class ConvAE final : public ConvFamily {
 public:
  ConvAE(const ModelConfig& c, Device d, DType t)
      : ConvFamily(c, d, t),
        encoder_(params_),
        d1_(params_, "decoder0", 8, 8, 3, 1, 1),
        d2_(params_, "decoder1", 8, 8, 3, 1, 1),
        d3_(params_, "decoder2", 8, 16, 3, 1, 0),
        d4_(params_, "decoder3", 16, 1, 3, 1, 1) {}

 protected:
  Value code(GraphParams& p, Value x) override { return encoder_(p, x, config_.activation); }
  Value decode(GraphParams& p, Value z) override {
    z = upsample_nearest2d(act(d1_(p, z)), 2);  // 8 x 8 x 8
    z = upsample_nearest2d(act(d2_(p, z)), 2);  // 8 x 16 x 16
    z = upsample_nearest2d(act(d3_(p, z)), 2);  // 16 x 14 x 14 -> 28 x 28
    return d4_(p, z);
  }

 private:
  SmallEncoder encoder_;
  Conv2d d1_, d2_, d3_, d4_;
};

class UpconvAE final : public ConvFamily {
 public:
  UpconvAE(const ModelConfig& c, Device d, DType t)
      : ConvFamily(c, d, t),
        encoder_(params_),
        t1_(params_, "decoder0", 8, 8, 4, 2, 1),
        t2_(params_, "decoder1", 8, 16, 4, 2, 1),
        t3_(params_, "decoder2", 16, 1, 4, 2, 3) {}

 protected:
  Value code(GraphParams& p, Value x) override { return encoder_(p, x, config_.activation); }
  Value decode(GraphParams& p, Value z) override {
    z = act(t1_(p, z));  // 8 x 8 x 8
    z = act(t2_(p, z));  // 16 x 16 x 16
    return t3_(p, z);    // 1 x 28 x 28
  }

 private:
  SmallEncoder encoder_;
  ConvTranspose2d t1_, t2_, t3_;
};

class ConvDAE final : public ConvFamily {
 public:
  ConvDAE(const ModelConfig& c, Device d, DType t)
      : ConvFamily(c, d, t),
        e1_(params_, "encoder0", 1, 32, 3, 1, 1),
        e2_(params_, "encoder1", 32, 32, 3, 1, 1),
        d1_(params_, "decoder0", 32, 32, 3, 1, 1),
        d2_(params_, "decoder1", 32, 32, 3, 1, 1),
        d3_(params_, "decoder2", 32, 1, 3, 1, 1) {}

  Value corrupted(GraphParams&, const Batch& batch) override { return corrupt(config_, batch); }
  bool corrupts_on_host() const override { return config_.noise == "affine"; }
  void corrupt_on_host(const float* clean, float* out, int64_t rows, int dim, int64_t step) const override {
    corrupt_affine(config_, clean, out, rows, dim, step);
  }

 protected:
  Value code(GraphParams& p, Value x) override {
    x = activate_pooled(e1_(p, x), config_.activation, 1);     // 32 x 15 x 15
    return activate_pooled(e2_(p, x), config_.activation, 0);  // 32 x 7 x 7
  }
  Value decode(GraphParams& p, Value z) override {
    z = upsample_nearest2d(act(d1_(p, z)), 2);  // 32 x 14 x 14
    z = upsample_nearest2d(act(d2_(p, z)), 2);  // 32 x 28 x 28
    return d3_(p, z);
  }

 private:
  Conv2d e1_, e2_, d1_, d2_, d3_;
};

}  // namespace

std::unique_ptr<Model> make_conv(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<ConvAE>(config, device, dtype);
}
std::unique_ptr<Model> make_upconv(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<UpconvAE>(config, device, dtype);
}
std::unique_ptr<Model> make_convdae(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<ConvDAE>(config, device, dtype);
}

}  // namespace ag::models
