// Capture and replay. A step graph that holds everything capture can get wrong (inputs uploaded
// from pinned memory at every run, a step counter advanced on the device and read by a random
// fill, parameters updated in place, a loss reduced into a scalar) must give, replay after
// replay, what fresh eager runs give and what the CPU gives. A new plan (another batch size)
// must compile and capture again while older captures stay valid, and a capture must go with
// its executor. Also, without a GPU: the CUDA backend must refuse clearly, never crash.
#include <cmath>
#include <memory>

#include <catch2/catch.hpp>

#include "cuda_harness.h"

namespace ag::cudatest {

namespace {

// One SGD step of a noisy tanh layer on a regression target: every random fill (a dropout-like
// bernoulli mask, normal and uniform noise) draws with the step counter the step advances.
struct NoisyLayerStep {
  Value y, loss, counter;
  std::vector<Value> outputs;

  NoisyLayerStep(DeviceGraph& d, int64_t batch) {
    Value x = d.input({batch, 40}, 0, 1), target = d.input({batch, 16}, -0.5, 0.5);
    Value w = d.external({16, 40}, -0.2, 0.2), b = d.external({16}, -0.1, 0.1);
    counter = d.external({}, 0, 0);
    y = tanh(linear(x * bernoulli(counter, {batch, 40}, 7, 0.8f), w, b) + normal(counter, {batch, 16}, 99, 0, 0.1f) +
             uniform(counter, {batch, 16}, 5, -0.05f, 0.05f));
    loss = mse(y, target);
    std::vector<Value> grads = grad(loss, {w, b});
    outputs = {loss, y, assign(w, w - grads[0] * 0.5f), assign(b, b - grads[1] * 0.5f), assign(counter, counter + 1.0f)};
  }
};

// The step built for the CPU and for CUDA, each with its own executor.
struct Twins {
  DeviceGraph cpu{Device::cpu, DType::f32}, gpu{Device::cuda, DType::f32};
  NoisyLayerStep cpu_step, gpu_step;
  std::unique_ptr<Executor> cpu_ex, gpu_ex;
  int runs = 0;

  explicit Twins(int64_t batch) : cpu_step(cpu, batch), gpu_step(gpu, batch) {
    cpu_ex = std::make_unique<Executor>(compile(cpu_step.outputs), Device::cpu);
    gpu_ex = std::make_unique<Executor>(compile(gpu_step.outputs), Device::cuda);
  }
  ~Twins() {  // executors first: they point into the graphs' buffers
    gpu_ex.reset();
    cpu_ex.reset();
  }

  // Runs both `count` times, checking after each run that CUDA matches the CPU.
  void run_and_compare(int count, const char* phase) {
    for (int k = 0; k < count; ++k, ++runs) {
      cpu.fill_inputs(*cpu_ex, runs);
      gpu.fill_inputs(*gpu_ex, runs);
      cpu_ex->run();
      gpu_ex->run();
      INFO(phase << ", run " << k + 1 << " of this executor, step " << runs + 1);
      CHECK(nmse(gpu_ex->read(gpu_step.y), cpu_ex->read(cpu_step.y)) < 1e-6);
      const double want = cpu_ex->read_scalar(cpu_step.loss), got = gpu_ex->read_scalar(gpu_step.loss);
      CHECK(std::abs(got - want) <= 1e-5 * std::abs(want));
      CHECK(gpu_ex->read_scalar(gpu_step.counter) == double(runs + 1));
    }
  }
};

}  // namespace

TEST_CASE("replayed steps equal eager steps and the CPU, step after step", "[cuda]") {
  constexpr int steps = 6;
  if (skip_without_device(steps)) return;
  const DType dtype = GENERATE(DType::f32, DType::f64);
  INFO(to_string(dtype));
  // Three copies of one model: the CPU's, one CUDA executor run again and again (eager, then
  // captured, then replayed), and on CUDA a fresh executor every step, so always eager.
  DeviceGraph cpu(Device::cpu, dtype), replayed(Device::cuda, dtype), eager(Device::cuda, dtype);
  NoisyLayerStep cpu_step(cpu, 24), replay_step(replayed, 24), eager_step(eager, 24);
  Executor cpu_ex(compile(cpu_step.outputs), Device::cpu), replay_ex(compile(replay_step.outputs), Device::cuda);
  HostTensor previous_y;
  for (int k = 0; k < steps; ++k) {
    cpu.fill_inputs(cpu_ex, k);
    replayed.fill_inputs(replay_ex, k);
    cpu_ex.run();
    replay_ex.run();
    HostTensor eager_y, eager_loss;
    {
      Executor eager_ex(compile(eager_step.outputs), Device::cuda);
      eager.fill_inputs(eager_ex, k);
      eager_ex.run();
      eager_y = eager_ex.read(eager_step.y);
      eager_loss = eager_ex.read(eager_step.loss);
    }
    INFO("step " << k + 1 << (k == 0 ? " (eager)" : k == 1 ? " (captured)" : " (replayed)"));
    const HostTensor y = replay_ex.read(replay_step.y), loss = replay_ex.read(replay_step.loss);
    // Same device, same kernels, deterministic reductions: replay and eager agree to rounding
    // at most (cuBLAS may pick another algorithm inside a capture).
    CHECK(nmse(y, eager_y) < 1e-12);
    CHECK(nmse(loss, eager_loss) < 1e-12);
    const std::vector<HostTensor> replay_state = replayed.read_externals(), eager_state = eager.read_externals();
    for (size_t i = 0; i < replay_state.size(); ++i) CHECK(nmse(replay_state[i], eager_state[i]) < 1e-12);
    // And the CPU: same values, and the counter the noise depends on moved on at every replay.
    CHECK(nmse(y, cpu_ex.read(cpu_step.y)) < 1e-6);
    CHECK(std::abs(loss.at(0) - cpu_ex.read_scalar(cpu_step.loss)) <= 1e-5 * std::abs(loss.at(0)));
    CHECK(replay_ex.read_scalar(replay_step.counter) == double(k + 1));
    if (k > 0) CHECK(nmse(y, previous_y) > 1e-6);  // new inputs and new noise: a frozen replay would repeat
    previous_y = y;
  }
}

TEST_CASE("a new plan compiles and captures again, and older captures stay valid", "[cuda]") {
  if (skip_without_device(4)) return;
  Twins small(8);
  small.run_and_compare(3, "batch 8");
  Twins large(12);  // another shape: another plan, another capture
  large.run_and_compare(3, "batch 12");
  small.run_and_compare(2, "batch 8 again");  // its graph was not disturbed by the second one
  // A new executor for the same graph: a new program, eager then captured again. The old
  // executor's capture goes with it, and its memory may be handed to the new one.
  small.gpu_ex.reset();
  small.gpu_ex = std::make_unique<Executor>(compile(small.gpu_step.outputs), Device::cuda);
  small.run_and_compare(3, "batch 8, new executor");
}

TEST_CASE("the CUDA backend is there exactly when a device is", "[cuda]") {
  if (cuda_available()) {
    CHECK(backend(Device::cuda).device() == Device::cuda);
    return;
  }
  CHECK_THROWS_WITH(backend(Device::cuda), Catch::Contains("cuda: no CUDA device"));
  Graph g;
  Value x = input(g, {2, 2}, "x");
  CHECK_THROWS_WITH(Executor(compile({exp(x)}), Device::cuda), Catch::Contains("cuda: no CUDA device"));
}

}  // namespace ag::cudatest
