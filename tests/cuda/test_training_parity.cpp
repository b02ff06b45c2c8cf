// Whole training steps on CUDA against the CPU: a plain and a denoising autoencoder
// (784 -> 32 -> 784, sigmoid code, bce_with_logits, SGD as assign nodes over ParamStore views),
// same seed and same batches on both backends, twenty steps. The step is compiled once, so on
// CUDA the first step runs eagerly, the second is captured and the rest are graph replays; the
// denoising mask comes from a step counter the step itself advances on the device.
#include <cmath>
#include <memory>

#include <catch2/catch.hpp>

#include "cuda_harness.h"
#include "step_fixture.h"

namespace ag::cudatest {

namespace {

constexpr int64_t batch = 32, pixels = 784, code = 32;
constexpr int steps = 20;

class AutoencoderStep {
 public:
  AutoencoderStep(Device device, bool denoising, float lr = 2.0f)
      : store_(device, DType::f32, 11), counter_(device, Shape{}, DType::f32) {
    counter_.write(HostTensor(Shape{}, DType::f32));  // zero-initialised
    const float r1 = 1.0f / std::sqrt(float(pixels)), r2 = 1.0f / std::sqrt(float(code));
    const int w1 = store_.add("enc.weight", {code, pixels}, Init::Uniform(-r1, r1));
    const int b1 = store_.add("enc.bias", {code}, Init::Zeros());
    const int w2 = store_.add("dec.weight", {pixels, code}, Init::Uniform(-r2, r2));
    const int b2 = store_.add("dec.bias", {pixels}, Init::Zeros());
    std::vector<Value> params = {store_.value(g_, w1), store_.value(g_, b1), store_.value(g_, w2), store_.value(g_, b2)};
    x_ = input(g_, {batch, pixels}, "x");
    Value seen = x_;
    std::vector<Value> outputs;
    if (denoising) {  // masking noise: each pixel kept with probability 3/4, new mask every step
      Value step = external(g_, counter_.tensor(), "step");
      seen = x_ * bernoulli(step, x_.shape(), 2024, 0.75f);
      outputs.push_back(assign(step, step + 1.0f));
    }
    Value h = sigmoid(linear(seen, params[0], params[1]));
    Value logits = linear(h, params[2], params[3]);
    loss_ = bce_with_logits(logits, x_);
    std::vector<Value> grads = grad(loss_, params);
    outputs.push_back(loss_);
    for (size_t i = 0; i < params.size(); ++i) outputs.push_back(assign(params[i], params[i] - grads[i] * lr));
    executor_ = std::make_unique<Executor>(compile(outputs), device);
  }

  // One SGD step on batch number k; returns its loss (read back, so the step has finished).
  double step(int k) {
    testing::make_batch(executor_->input(x_).ptr<float>(), batch, pixels, int64_t(k) * batch);
    executor_->run();
    return executor_->read_scalar(loss_);
  }
  HostTensor param(int i) { return store_.read(i); }

 private:
  ParamStore store_;
  DeviceBuffer counter_;
  Graph g_;
  Value x_, loss_;
  std::unique_ptr<Executor> executor_;  // last: destroyed before the memory it points into
};

void check_training_parity(bool denoising) {
  AutoencoderStep cpu(Device::cpu, denoising), gpu(Device::cuda, denoising);
  double first = 0, last = 0;
  for (int k = 0; k < steps; ++k) {
    const double want = cpu.step(k), got = gpu.step(k);
    INFO((denoising ? "denoising" : "plain") << " autoencoder, step " << k + 1 << ": cpu loss " << want
                                              << ", cuda loss " << got);
    REQUIRE(std::isfinite(got));
    CHECK(std::abs(got - want) <= 1e-4 * std::abs(want));
    if (k == 0) first = want;
    last = want;
  }
  CHECK(last < first);  // it trains: the comparison is of a moving model, not a frozen one
  for (int i = 0; i < 4; ++i) {
    INFO("parameter " << i << " after " << steps << " steps");
    CHECK(nmse(gpu.param(i), cpu.param(i)) < 1e-6);
  }
}

}  // namespace

TEST_CASE("a plain autoencoder trains on CUDA as on the CPU", "[cuda]") {
  if (skip_without_device(steps)) return;
  check_training_parity(false);
}

TEST_CASE("a denoising autoencoder trains on CUDA as on the CPU", "[cuda]") {
  if (skip_without_device(steps)) return;
  check_training_parity(true);
}

}  // namespace ag::cudatest
