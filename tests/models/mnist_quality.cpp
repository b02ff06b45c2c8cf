// Quality on the real MNIST (label "slow"): each variant trained with the tutorial's settings
// (5 epochs per phase, minibatch 150, seed 0, Adagrad lr 0.01, BCE; Adam lr 1e-3 for the VAE)
// must reach a test-set reconstruction BCE (mean per pixel) no worse than 2% above PyTorch with
// the same setup, and the VAE a test loss (nats per image) no worse than 2% above. Skips unless
// AEGRAPH_DATA names the folder with the four MNIST IDX files. Results: docs/quality.md.
#include <catch2/catch.hpp>

#include <cstdlib>

#include <fmt/format.h>

#include "models/trainer.h"
#include "tools/io/idx.h"

using namespace ag;
using namespace ag::models;

namespace {

const io::Mnist* mnist() {
  static const io::Mnist* data = [] () -> const io::Mnist* {
    const char* dir = std::getenv("AEGRAPH_DATA");
    if (!dir || !*dir) return nullptr;
    static io::Mnist m = io::load_mnist(dir);
    return &m;
  }();
  return data;
}

DataView view(const io::Dataset& d) { return DataView{d.images.data(), d.n, int(d.image_size()), d.labels.data()}; }

// Trains `model` for 5 epochs a phase and returns the last epoch's report.
EpochReport run(const ModelConfig& config, OptimConfig optim = {}) {
  const io::Mnist& m = *mnist();
  auto model = make_model(config, Device::cpu);
  TrainConfig t;  // the tutorial's: 5 epochs, batch 150, seed 0
  t.optim = optim;
  Trainer trainer(*model, t);
  trainer.on_epoch = [&](const EpochReport& r) {
    fmt::print("{:>4} {:<11} epoch {}  train {:.4f}  test loss {:.4f}  bce {:.4f}  mse {:.2f}  {:.0f} samples/s\n",
               config.kind, r.phase_name, r.epoch + 1, r.train_loss, r.test.loss, r.test.bce, r.test.mse,
               r.samples_per_s);
    std::fflush(stdout);
  };
  std::vector<EpochReport> reports = trainer.fit(view(m.train), view(m.test));
  return reports.back();
}

ModelConfig kind(const char* k) {
  ModelConfig c;
  c.kind = k;
  return c;
}

#define REQUIRE_MNIST()                                                              \
  if (!mnist()) {                                                                    \
    WARN("skipped: set AEGRAPH_DATA to the MNIST folder (e.g. /work/shared/data/mnist)"); \
    return;                                                                          \
  }

}  // namespace

TEST_CASE("MNIST: plain autoencoder within 2% of PyTorch's 0.0935", "[mnist][ae]") {
  REQUIRE_MNIST();
  CHECK(run(kind("ae")).test.bce <= 0.0935 * 1.02);
}

TEST_CASE("MNIST: denoising autoencoder (masking 0.3) within 2% of PyTorch's 0.1059", "[mnist][dae]") {
  REQUIRE_MNIST();
  CHECK(run(kind("dae")).test.bce <= 0.1059 * 1.02);
}

TEST_CASE("MNIST: contractive autoencoder (sigmoid, lambda 0.1) within 2% of PyTorch's 0.2370", "[mnist][cae]") {
  REQUIRE_MNIST();
  CHECK(run(kind("cae")).test.bce <= 0.2370 * 1.02);
}

TEST_CASE("MNIST: stacked autoencoder (784-128-64) within 2% of PyTorch's 0.1206", "[mnist][sae]") {
  REQUIRE_MNIST();
  CHECK(run(kind("sae")).test.bce <= 0.1206 * 1.02);
}

TEST_CASE("MNIST: deep autoencoder (784-1000-500-250-30) within 2% of PyTorch's 0.1278", "[mnist][deep]") {
  REQUIRE_MNIST();
  CHECK(run(kind("deep")).test.bce <= 0.1278 * 1.02);
}

TEST_CASE("MNIST: variational autoencoder (Adam 1e-3) within 2% of PyTorch's 109.0 nats", "[mnist][vae]") {
  REQUIRE_MNIST();
  OptimConfig adam;
  adam.kind = "adam";
  adam.lr = 1e-3;
  CHECK(run(kind("vae"), adam).test.loss <= 109.0 * 1.02);
}
