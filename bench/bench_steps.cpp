// Google Benchmarks of one whole training step per model on the CPU backend: the step aebench
// times (the phase's loss, gradients and optimiser update, compiled as the trainer compiles
// it), with the minibatch gathered from shuffled rows of synthetic MNIST-shaped data each step.
// Counters: samples/s, the achieved GFLOP/s of the step's matrix products, the arena size.
// Arguments: batch size, threads. `aebench` is the tool for comparisons; this is for quick
// A/B runs of a core change (--benchmark_filter=step/ae/150).
#include <benchmark/benchmark.h>

#include <string>

#include "graph/aegraph.h"
#include "tools/aebench/bench_data.h"
#include "tools/aebench/gemm_floor.h"
#include "tools/aebench/training_step.h"

using namespace ag;

namespace {

const bench::BenchData& shared_data() {
  static const bench::BenchData data = bench::synthetic_data(10000, 784, 0);
  return data;
}

void BM_step(benchmark::State& state, const std::string& kind) {
  const int64_t batch = state.range(0);
  set_num_threads(int(state.range(1)));
  models::ModelConfig config;
  config.kind = kind;
  bench::TrainingStep step(config, bench::tutorial_optimiser(kind), Device::cpu, batch);
  const bench::BenchData& data = shared_data();
  const models::DataView view = data.view();
  bench::BatchOrder order(data.n, batch, 0);
  for (int i = 0; i < 3; ++i) {  // first touch of the arena and the optimiser state
    step.gather(view, order.next());
    step.run();
  }
  for (auto _ : state) {
    step.gather(view, order.next());
    step.run();
  }
  const double flops = bench::total_flops(bench::plan_matmuls(step.plan()));
  state.SetItemsProcessed(int64_t(state.iterations()) * batch);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["arena_KiB"] = double(step.plan().arena_bytes) / 1024.0;
}

const int registered = [] {
  for (const char* kind : {"ae", "dae", "cae", "sparse", "sae", "deep", "vae"})
    benchmark::RegisterBenchmark((std::string("step/") + kind).c_str(), BM_step, std::string(kind))
        ->ArgNames({"batch", "threads"})
        ->Args({150, 1})
        ->Args({150, 2})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
