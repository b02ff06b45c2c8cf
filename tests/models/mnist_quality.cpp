// Quality on the real MNIST (label "slow"): each variant trained with the tutorial's settings
// (5 epochs per phase, minibatch 150, Adagrad lr 0.01, BCE; Adam lr 1e-3 for the VAE and the
// convolutional models) with several seeds (initialisation, noise, shuffling). The mean over the
// seeds of the test-set reconstruction BCE (mean per pixel; the VAE: test loss, nats per image)
// must be no worse than 2% above PyTorch's mean over the same seeds with the same setup
// (bench/peers/torch_quality.py).
// One seed is not enough: the seed-to-seed spread of either framework is larger than 2%, and
// three seeds leave about 1% of noise in each side's mean for the deep model (docs/quality.md),
// so the dense models, cheap to train, are judged over seeds 0-4; the convolutional ones over 0-2.
// Skips unless AEGRAPH_DATA names the folder with the four MNIST IDX files. Results:
// docs/quality.md.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "models/aae.h"
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

// Trains `config` for `epochs` epochs a phase (the tutorial's 5) with `seed` and returns the
// last epoch's report.
EpochReport run(ModelConfig config, uint64_t seed, int epochs = 5) {
  const io::Mnist& m = *mnist();
  config.seed = seed;
  auto model = make_model(config, Device::cpu);
  TrainConfig t;  // the tutorial's batch, 150
  t.epochs = epochs;
  t.seed = seed;
  t.optim.kind = default_optimiser(config.kind);
  t.optim.lr = t.optim.kind == "adam" ? 1e-3 : 0.01;
  t.optim.grad_clamp = default_grad_clamp(config.kind);
  Trainer trainer(*model, t);
  trainer.on_epoch = [&](const EpochReport& r) {
    fmt::print("{:>7} seed {} {:<11} epoch {}  train {:.4f}  test loss {:.4f}  bce {:.4f}  mse {:.2f}  {:.0f} samples/s\n",
               config.kind, seed, r.phase_name, r.epoch + 1, r.train_loss, r.test.loss, r.test.bce, r.test.mse,
               r.samples_per_s);
    std::fflush(stdout);
  };
  std::vector<EpochReport> reports = trainer.fit(view(m.train), view(m.test));
  return reports.back();
}

// Seeds 0 .. seeds-1 of `kind`: the figure of each (test BCE, or the VAE's test loss) and their
// mean, printed as a row of docs/quality.md's table, checked against PyTorch's mean + tolerance.
void check_over_seeds(const char* kind, double torch_mean, int seeds, double tolerance = 0.02, int epochs = 5) {
  ModelConfig config;
  config.kind = kind;
  std::vector<double> figures;
  double mean = 0;
  for (int seed = 0; seed < seeds; ++seed) {
    const EpochReport r = run(config, uint64_t(seed), epochs);
    figures.push_back(std::string(kind) == "vae" || std::string(kind) == "catvae" ? r.test.loss : r.test.bce);
    mean += figures.back() / seeds;
  }
  const double limit = torch_mean * (1 + tolerance);
  std::string row = fmt::format("| {} |", kind);
  for (double f : figures) row += fmt::format(" {:.4f} |", f);
  fmt::print("{} **{:.4f}** | {:.4f} | {:.4f} | {:+.1f}% |\n", row, mean, torch_mean, limit, 100 * (mean / torch_mean - 1));
  std::fflush(stdout);
  INFO(kind << ": mean over seeds 0-" << seeds - 1 << " " << mean << ", PyTorch's " << torch_mean << ", limit " << limit);
  CHECK(mean <= limit);
}

#define REQUIRE_MNIST()                                                              \
  if (!mnist()) {                                                                    \
    WARN("skipped: set AEGRAPH_DATA to the MNIST folder (the Makefile sets it to ../shared/data/mnist when that copy exists)"); \
    return;                                                                          \
  }

}  // namespace

// PyTorch's means (bench/peers/torch_quality.py, docs/quality.md). Dense models: seeds 0-4, each
// run in both of the machine's environments (OPENBLAS_CORETYPE as the machine sets it, and
// unset), ten runs a model; PyTorch's own means in the two environments differ by up to 1%.
constexpr double TORCH_AE = 0.09191, TORCH_DAE = 0.10473, TORCH_CAE = 0.23675, TORCH_SAE = 0.08967,
                 TORCH_DEEP = 0.12958, TORCH_VAE = 108.758;
constexpr int dense_seeds = 5;

TEST_CASE("MNIST: plain autoencoder, mean of seeds 0-4 within 2% of PyTorch's", "[mnist][ae]") {
  REQUIRE_MNIST();
  check_over_seeds("ae", TORCH_AE, dense_seeds);
}

TEST_CASE("MNIST: denoising autoencoder (masking 0.3), mean of seeds 0-4 within 2% of PyTorch's", "[mnist][dae]") {
  REQUIRE_MNIST();
  check_over_seeds("dae", TORCH_DAE, dense_seeds);
}

TEST_CASE("MNIST: contractive autoencoder (sigmoid, lambda 0.1), mean of seeds 0-4 within 2% of PyTorch's", "[mnist][cae]") {
  REQUIRE_MNIST();
  check_over_seeds("cae", TORCH_CAE, dense_seeds);
}

TEST_CASE("MNIST: stacked autoencoder (784-128-64), mean of seeds 0-4 within 2% of PyTorch's", "[mnist][sae]") {
  REQUIRE_MNIST();
  check_over_seeds("sae", TORCH_SAE, dense_seeds);
}

TEST_CASE("MNIST: deep autoencoder (784-1000-500-250-30), mean of seeds 0-4 within 2% of PyTorch's", "[mnist][deep]") {
  REQUIRE_MNIST();
  check_over_seeds("deep", TORCH_DEEP, dense_seeds);
}

TEST_CASE("MNIST: variational autoencoder (Adam 1e-3), mean of seeds 0-4 within 2% of PyTorch's", "[mnist][vae]") {
  REQUIRE_MNIST();
  check_over_seeds("vae", TORCH_VAE, dense_seeds);
}

// Convolutional models (Adam lr 1e-3): PyTorch's means over seeds 0-2 in the machine's default
// environment (its convolutions run on oneDNN, which OPENBLAS_CORETYPE does not touch).
constexpr double TORCH_CONV = 0.11833, TORCH_UPCONV = 0.11142, TORCH_CONVDAE = 0.08069;
constexpr int conv_seeds = 3;

TEST_CASE("MNIST: convolutional autoencoder (ConvAE), mean of seeds 0-2 within 2% of PyTorch's", "[mnist][conv]") {
  REQUIRE_MNIST();
  check_over_seeds("conv", TORCH_CONV, conv_seeds);
}

TEST_CASE("MNIST: up-convolutional autoencoder (UpconvAE), mean of seeds 0-2 within 2% of PyTorch's", "[mnist][upconv]") {
  REQUIRE_MNIST();
  check_over_seeds("upconv", TORCH_UPCONV, conv_seeds);
}

TEST_CASE("MNIST: convolutional denoising autoencoder (Gaussian 0.5), mean of seeds 0-2 within 2% of PyTorch's",
          "[mnist][convdae]") {
  REQUIRE_MNIST();
  check_over_seeds("convdae", TORCH_CONVDAE, conv_seeds);
}
// Batch-normalised models (issue 15; Adam lr 1e-3, seeds 0-2): PyTorch's means over seeds 0-2
// (bench/peers/torch_quality.py --models catvae,aae --threads 1, the machine's default
// environment). catvae: the test loss in nats per image, within 2%.
constexpr double TORCH_CATVAE = 122.5198;
constexpr int batch_norm_seeds = 3;

TEST_CASE("MNIST: categorical VAE (Gumbel-softmax, 5 x 10), mean of seeds 0-2 within 2% of PyTorch's", "[mnist][catvae]") {
  REQUIRE_MNIST();
  check_over_seeds("catvae", TORCH_CATVAE, batch_norm_seeds);
}

// aae: the test BCE within 5% of PyTorch's, and the shares of test codes inside radius 1 and 2
// within 0.05 of PyTorch's. The shares move so much from seed to seed in either framework
// (PyTorch, seeds 0-19: 0.32-0.70 inside radius 1, 0.69-1.00 inside radius 2) that a mean over
// a few seeds is decided by which seeds the rounding favours: a change of summation order
// alone moved ours across the bar over three seeds, and batch norm's ops moved it to the edge
// over ten (0.555 against 0.505, while PyTorch's own seeds 10-19 average 0.556). So both
// sides' means are over seeds 0-19 (bench/peers/torch_quality.py --models aae --seeds
// 0,...,19 --threads 1, the machine's default environment); docs/quality.md has every seed.
constexpr double TORCH_AAE_BCE = 0.18675, TORCH_AAE_R1 = 0.5307, TORCH_AAE_R2 = 0.9033;
constexpr int aae_seeds = 20;

TEST_CASE("MNIST: adversarial autoencoder, mean of seeds 0-19: test BCE within 5% and code shares within 0.05 of PyTorch's", "[mnist][aae]") {
  REQUIRE_MNIST();
  const io::Mnist& m = *mnist();
  double bce = 0, r1 = 0, r2 = 0;
  std::string row = "| aae |";
  for (int seed = 0; seed < aae_seeds; ++seed) {
    ModelConfig config;
    config.kind = "aae";
    config.seed = uint64_t(seed);
    auto model = make_model(config, Device::cpu);
    TrainConfig t;
    t.seed = uint64_t(seed);
    t.optim.kind = default_optimiser("aae");
    t.optim.lr = 1e-3;
    Trainer trainer(*model, t);
    const EpochReport r = trainer.fit(view(m.train), view(m.test)).back();
    std::vector<float> z = dynamic_cast<AdversarialAutoencoder&>(*model).codes(m.test.images.data(), m.test.n);
    double in1 = 0, in2 = 0;
    for (int64_t i = 0; i < m.test.n; ++i) {
      const double q = double(z[size_t(2 * i)]) * z[size_t(2 * i)] + double(z[size_t(2 * i + 1)]) * z[size_t(2 * i + 1)];
      in1 += q < 1 ? 1.0 / double(m.test.n) : 0.0;
      in2 += q < 4 ? 1.0 / double(m.test.n) : 0.0;
    }
    fmt::print("    aae seed {}: test bce {:.4f}, inside radius 1 {:.4f}, radius 2 {:.4f}\n", seed, r.test.bce, in1, in2);
    std::fflush(stdout);
    row += fmt::format(" {:.4f} / {:.3f} / {:.3f} |", r.test.bce, in1, in2);
    bce += r.test.bce / aae_seeds;
    r1 += in1 / aae_seeds;
    r2 += in2 / aae_seeds;
  }
  fmt::print("{} **{:.4f} / {:.3f} / {:.3f}** | {:.4f} / {:.3f} / {:.3f} |\n", row, bce, r1, r2, TORCH_AAE_BCE, TORCH_AAE_R1,
             TORCH_AAE_R2);
  INFO("aae: test bce " << bce << " (PyTorch " << TORCH_AAE_BCE << "), radius 1 " << r1 << " (" << TORCH_AAE_R1
                        << "), radius 2 " << r2 << " (" << TORCH_AAE_R2 << ")");
  CHECK(bce <= TORCH_AAE_BCE * 1.05);
  CHECK(std::abs(r1 - TORCH_AAE_R1) <= 0.05);
  CHECK(std::abs(r2 - TORCH_AAE_R2) <= 0.05);
}

// wta (issue 15; Adam lr 1e-3): the test BCE with every activation passing, which decodes codes
// far denser than any the decoder saw in training and so spreads widely from seed to seed
// (PyTorch: 0.1997-0.2291 over seeds 0-9). Judged over seeds 0-9, against PyTorch's mean over
// the same ten seeds (bench/peers/torch_quality.py --models wta --seeds 0,...,9 --threads 1, the
// machine's default environment); over seeds 0-2 alone docs/quality.md has both sides too.
constexpr double TORCH_WTA = 0.21386;
constexpr int wta_seeds = 10;

TEST_CASE("MNIST: winner-take-all autoencoder (lifetime sparsity 5%), mean of seeds 0-9 within 2% of PyTorch's", "[mnist][wta]") {
  REQUIRE_MNIST();
  check_over_seeds("wta", TORCH_WTA, wta_seeds);
}

// seq2seq (issue 15): 1 epoch, Adam 1e-3 with gradients clamped to [-10, 10], the teacher-forced
// test BCE within 3% of PyTorch's mean over seeds 0-2 (torch_quality.py --models seq2seq
// --epochs 1 --threads 1, the machine's default environment; free-running: docs/quality.md).
constexpr double TORCH_SEQ2SEQ = 0.14294;

TEST_CASE("MNIST: sequence-to-sequence LSTM autoencoder (1 epoch), mean of seeds 0-2 within 3% of PyTorch's",
          "[mnist][seq2seq]") {
  REQUIRE_MNIST();
  check_over_seeds("seq2seq", TORCH_SEQ2SEQ, 3, 0.03, 1);
}
