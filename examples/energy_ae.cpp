// A new autoencoder variant written against the installed aegraph: reconstruction plus a
// code-energy penalty, trained on MNIST (or any folder of the four IDX files) and saved as a
// safetensors checkpoint. Usage: energy_ae <idx folder> <out.safetensors> [epochs] [train limit]
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "graph/aegraph.h"
#include "models/model.h"
#include "models/trainer.h"
#include "tools/io/idx.h"
#include "tools/io/safetensors.h"

using namespace ag;
using namespace ag::models;

// loss = BCE(decoder(h), x) + gamma * mean_batch ||h||^2, with h = sigmoid(encoder(x)).
class EnergyAutoencoder final : public Model {
 public:
  EnergyAutoencoder(const ModelConfig& c, double gamma) : Model(c, Device::cpu), gamma_(gamma) {
    encoder_ = Linear(params_, "encoder", c.sizes[0], c.sizes[1]);
    decoder_ = Linear(params_, "decoder", c.sizes[1], c.sizes[0]);
  }
  Value encode(GraphParams& p, Value x) override { return sigmoid(encoder_(p, x)); }
  Value logits(GraphParams& p, Value x, int) override { return decoder_(p, encode(p, x)); }
  Value loss(GraphParams& p, const Batch& batch, int) override {
    Value h = encode(p, batch.x);
    Value energy = sum(square(h)) * float(1.0 / double(h.shape()[0]));
    return bce_with_logits(decoder_(p, h), batch.x) + energy * float(gamma_);
  }

 private:
  Linear encoder_, decoder_;
  double gamma_;
};

int main(int argc, char** argv) try {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <idx folder> <out.safetensors> [epochs] [train limit]\n", argv[0]);
    return 2;
  }
  io::Mnist data = io::load_mnist(argv[1], argc > 4 ? std::stoll(argv[4]) : -1);
  const int dim = int(data.train.image_size());
  ModelConfig config;
  config.kind = "energy";
  config.sizes = {dim, 64};
  EnergyAutoencoder model(config, 1e-3);

  TrainConfig train;
  train.epochs = argc > 3 ? std::stoi(argv[3]) : 3;
  train.batch_size = 100;
  train.optim.kind = "adam";
  train.optim.lr = 1e-3;
  Trainer trainer(model, train);
  const DataView train_view{data.train.images.data(), data.train.n, dim, data.train.labels.data()};
  const DataView test_view{data.test.images.data(), data.test.n, dim, data.test.labels.data()};
  const double before = trainer.evaluate(test_view).bce;
  trainer.on_epoch = [](const EpochReport& r) {
    std::printf("epoch %d: train loss %.4f, test bce %.4f\n", r.epoch + 1, r.train_loss, r.test.bce);
  };
  const double after = trainer.fit(train_view, test_view).back().test.bce;

  std::vector<io::NamedTensor> tensors;
  for (int i = 0; i < model.params().count(); ++i) tensors.push_back({model.params().name(i), model.params().read(i)});
  io::save_safetensors(argv[2], tensors, {{"model", "energy"}, {"test_bce", std::to_string(after)}});
  std::printf("test bce %.4f -> %.4f; wrote %s\n", before, after, argv[2]);
  return after < before ? 0 : 1;  // it must have learned something
} catch (const std::exception& e) {
  std::fprintf(stderr, "energy_ae: %s\n", e.what());
  return 1;
}
