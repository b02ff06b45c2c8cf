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

using models::testing::small_variants;
using Variant = models::testing::SmallVariant;

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
  if (skip_without_device(int(small_variants().size()))) return;
  for (const Variant& v : small_variants()) {
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

// The "count them": a captured step is one graph launch and one wait for its uploads'
// pinned buffers (before the host refills them), and nothing else: no allocation by anyone (the
// device's memory in use does not move, so cuBLAS allocated nothing either), no stream
// synchronisation, no eager run, no new capture. Four more steps in an epoch must cost exactly
// four of those; the epoch's own work (its loss read once, its counters written) cancels out.
TEST_CASE("a captured training step of every model allocates nothing and never synchronises", "[cuda]") {
  if (skip_without_device(int(small_variants().size()))) return;
  for (const Variant& v : small_variants()) {
    const models::testing::StepCosts costs = models::testing::measure_step_costs(v.kind, v.sizes, Device::cuda);
    const BackendCounts &e = costs.short_epoch, more = costs.per_extra_steps();
    INFO(v.kind << ": an epoch of 4 steps: " << e.allocations << " allocations, " << e.stream_syncs << " stream syncs, "
                << e.upload_waits << " upload waits, " << e.graph_launches << " graph launches, " << e.eager_runs
                << " eager runs, " << e.captures << " captures, device memory " << e.device_bytes_used << " bytes more");
    CHECK(e.allocations == 0);
    CHECK(e.eager_runs == 0);
    CHECK(e.captures == 0);
    CHECK(e.device_bytes_used == 0);
    CHECK(costs.long_epoch.device_bytes_used == 0);
    CHECK(more.allocations == 0);
    CHECK(more.stream_syncs == 0);
    CHECK(more.eager_runs == 0);
    CHECK(more.captures == 0);
    CHECK(more.graph_launches == costs.extra_steps);
    CHECK(more.upload_waits == costs.extra_steps);
  }
}

}  // namespace ag::cudatest
