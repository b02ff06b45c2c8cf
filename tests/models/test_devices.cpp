// The same model code on CPU and CUDA: only the Device argument changes, and the losses agree
// (the noise is the same counter-based draw on both). Skips where no CUDA device is present.
#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>

#include "helpers.h"

using namespace ag;
using namespace ag::models;
using namespace ag::models::testing;

namespace {

std::vector<EpochReport> train_on(Device device, const std::string& kind, const std::string& optimiser) {
  ModelConfig c;
  c.kind = kind;
  c.sizes = kind == "vae" ? std::vector<int>{64, 16, 4} : kind == "sae" ? std::vector<int>{64, 16, 8}
                                                                          : std::vector<int>{64, 12};
  c.seed = 2;
  auto model = make_model(c, device);
  TrainConfig t;
  t.epochs = 2;
  t.batch_size = 40;
  t.eval_batch_size = 30;
  t.optim.kind = optimiser;
  t.optim.lr = optimiser == "adagrad" ? 0.1 : 0.01;
  Trainer trainer(*model, t);
  Generated train = generated_digits(200, 64), test = generated_digits(70, 64, 500);
  return trainer.fit(train.view(), test.view());
}

}  // namespace

TEST_CASE("every variant trains on CUDA to the CPU's losses", "[devices][cuda]") {
  if (!cuda_available()) {
    if (const char* need = std::getenv("AEGRAPH_REQUIRE_CUDA"); need && std::string(need) == "1")
      FAIL("AEGRAPH_REQUIRE_CUDA=1, but " << cuda_unavailable_reason());
    WARN("skipped: " << cuda_unavailable_reason());
    return;
  }
  for (const auto& [kind, optimiser] : {std::pair<std::string, std::string>{"ae", "adagrad"}, {"dae", "adam"},
                                        {"cae", "adagrad"}, {"sparse", "sgd"}, {"sae", "adagrad"},
                                        {"deep", "adamw"}, {"vae", "adam"}}) {
    INFO(kind << " with " << optimiser);
    std::vector<EpochReport> cpu = train_on(Device::cpu, kind, optimiser);
    std::vector<EpochReport> gpu = train_on(Device::cuda, kind, optimiser);
    REQUIRE(cpu.size() == gpu.size());
    for (size_t k = 0; k < cpu.size(); ++k) {
      // Summation order differs (cuBLAS, parallel reductions), so agreement is to 1e-3, not bits.
      CHECK(gpu[k].train_loss == Approx(cpu[k].train_loss).epsilon(1e-3));
      CHECK(gpu[k].test.loss == Approx(cpu[k].test.loss).epsilon(1e-3));
      CHECK(gpu[k].test.bce == Approx(cpu[k].test.bce).epsilon(1e-3));
    }
  }
}
