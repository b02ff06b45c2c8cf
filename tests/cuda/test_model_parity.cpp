// Every model of models/ trains on CUDA as on the CPU: the same variant, seed and batches through
// the Trainer on both backends (compiled steps; on CUDA captured and replayed), two epochs of
// small generated digits. Per-epoch training and test losses agree within 1e-3 relative and the
// parameters within 1e-3 of the largest, the numerical contract's "agreement within float
// rounding" grown over a dozen chaotic steps (docs/architecture.md); wta's top-k over the batch
// may break a near-tie differently, which the looser parameter bound allows for.
#include <cmath>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "../models/helpers.h"
#include "cuda_harness.h"
#include "models/model.h"
#include "models/trainer.h"

namespace ag::cudatest {

namespace {

using models::testing::Generated;
using models::testing::generated_digits;

struct Variant {
  std::string kind;
  std::vector<int> sizes;  // empty: the variant's default (the convolutional models)
};

const std::vector<Variant> variants = {
    {"ae", {784, 16}},           {"dae", {784, 16}},          {"cae", {784, 16}},        {"sparse", {784, 16}},
    {"sae", {784, 32, 8}},       {"deep", {784, 32, 16, 4}},  {"vae", {784, 32, 4}},     {"conv", {}},
    {"upconv", {}},              {"convdae", {}},             {"wta", {784, 32}},        {"seq2seq", {784, 8}},
    {"catvae", {784, 32, 16, 20}}, {"aae", {784, 32, 16, 2}},
};

struct Run {
  std::vector<models::EpochReport> epochs;
  std::vector<HostTensor> params;
};

Run train(const Variant& v, Device device) {
  models::ModelConfig c;
  c.kind = v.kind;
  c.sizes = v.sizes;
  c.seed = 5;
  auto model = models::make_model(c, device);
  models::TrainConfig t;
  t.epochs = 2;
  t.batch_size = 30;
  t.eval_batch_size = 60;
  t.seed = 5;
  t.optim.kind = models::default_optimiser(v.kind);
  t.optim.lr = t.optim.kind == "adam" ? 1e-3 : 0.01;
  t.optim.grad_clamp = models::default_grad_clamp(v.kind);
  models::Trainer trainer(*model, t);
  const Generated data = generated_digits(120, 784), test = generated_digits(60, 784, 1000);
  Run r;
  r.epochs = trainer.fit(data.view(), test.view());
  for (int i = 0; i < model->params().count(); ++i) r.params.push_back(model->params().read(i));
  return r;
}

}  // namespace

TEST_CASE("every model trains on CUDA as on the CPU through the Trainer", "[cuda]") {
  if (skip_without_device(int(variants.size()))) return;
  for (const Variant& v : variants) {
    INFO(v.kind);
    const Run cpu = train(v, Device::cpu), gpu = train(v, Device::cuda);
    REQUIRE(cpu.epochs.size() == gpu.epochs.size());
    for (size_t e = 0; e < cpu.epochs.size(); ++e) {
      const models::EpochReport &a = cpu.epochs[e], &b = gpu.epochs[e];
      INFO(a.phase_name << " epoch " << a.epoch + 1 << ": train loss cpu " << a.train_loss << ", cuda " << b.train_loss
                        << "; test loss cpu " << a.test.loss << ", cuda " << b.test.loss);
      REQUIRE(std::isfinite(b.train_loss));
      CHECK(std::abs(b.train_loss - a.train_loss) <= 1e-3 * std::abs(a.train_loss));
      CHECK(std::abs(b.test.loss - a.test.loss) <= 1e-3 * std::abs(a.test.loss));
      CHECK(std::abs(b.test.bce - a.test.bce) <= 1e-3 * std::abs(a.test.bce));
    }
    REQUIRE(cpu.params.size() == gpu.params.size());
    for (size_t i = 0; i < cpu.params.size(); ++i) {
      double largest = 0, worst = 0;
      for (int64_t k = 0; k < cpu.params[i].numel(); ++k) {
        largest = std::max(largest, std::abs(cpu.params[i].at(k)));
        worst = std::max(worst, std::abs(gpu.params[i].at(k) - cpu.params[i].at(k)));
      }
      INFO("parameter " << i << ": largest " << largest << ", worst difference " << worst);
      CHECK(worst <= 1e-3 * std::max(largest, 1e-3));
    }
  }
}

}  // namespace ag::cudatest
