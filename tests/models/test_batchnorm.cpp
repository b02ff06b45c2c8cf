// Batch normalisation and the step machinery it needs: PyTorch BatchNorm1d's numbers in
// training (batch statistics, running statistics updated with the unbiased variance) and in
// evaluation (running statistics), its gradient through the batch statistics against central
// differences, a layer applied twice updating its state twice, and the running statistics
// being state that no optimiser touches but every checkpoint keeps. Also two players in one
// step: the adversarial autoencoder's adversary has its own optimiser and checkpointed state.
#include <catch2/catch.hpp>

#include <cmath>

#include "helpers.h"
#include "models/train_step.h"

using namespace ag;
using namespace ag::models;
using namespace ag::models::testing;

namespace {

constexpr int64_t rows = 5, features = 3;

double x_at(int64_t r, int64_t f) { return std::sin(1.3 * double(r) + 2.1 * double(f)) * (1.0 + double(f)); }

// The reference: per feature, the batch mean, biased and unbiased variance.
struct Stats {
  double mean[features], biased[features], unbiased[features];
};
Stats stats() {
  Stats s{};
  for (int64_t f = 0; f < features; ++f) {
    double m = 0, v = 0;
    for (int64_t r = 0; r < rows; ++r) m += x_at(r, f) / rows;
    for (int64_t r = 0; r < rows; ++r) v += (x_at(r, f) - m) * (x_at(r, f) - m);
    s.mean[f] = m;
    s.biased[f] = v / rows;
    s.unbiased[f] = v / (rows - 1);
  }
  return s;
}

std::vector<double> x_values() {
  std::vector<double> x;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t f = 0; f < features; ++f) x.push_back(x_at(r, f));
  return x;
}

}  // namespace

TEST_CASE("batch norm: batch statistics in training, running statistics in evaluation", "[batchnorm]") {
  ParamStore store(Device::cpu, DType::f64);
  BatchNorm1d bn(store, "bn", features);
  const int weight = store.find("bn.weight"), bias = store.find("bn.bias");
  const int mean = store.find("bn.running_mean"), var = store.find("bn.running_var");
  CHECK(store.trainable(weight));
  CHECK_FALSE(store.trainable(mean));
  CHECK(values(store.read(weight)) == std::vector<double>(features, 1.0));
  CHECK(values(store.read(var)) == std::vector<double>(features, 1.0));
  HostTensor w(Shape{features}, DType::f64), b(Shape{features}, DType::f64);
  for (int f = 0; f < features; ++f) {
    w.set(f, 0.5 + f);
    b.set(f, 0.1 * f - 0.2);
  }
  store.write(weight, w);
  store.write(bias, b);
  const Stats s = stats();

  // Training, twice in one graph: the second application reads what the first wrote.
  Graph g;
  GraphParams p(g, store);
  Value x = input(g, {rows, features}, "x", DType::f64);
  Value y = bn(p, x, Mode::train);
  Value again = bn(p, x * 2.0f, Mode::train);
  REQUIRE(p.updates().size() == 4);
  std::vector<Value> outputs = {y, again};
  for (Value u : p.updates()) outputs.push_back(u);
  Executor ex(compile(outputs));
  feed_input(ex, x, x_values());
  ex.run();
  HostTensor out = ex.read(y);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t f = 0; f < features; ++f) {
      const double want = (x_at(r, f) - s.mean[f]) / std::sqrt(s.biased[f] + 1e-5) * w.at(f) + b.at(f);
      CHECK(out.at(r * features + f) == Approx(want).epsilon(1e-7));  // 1/B is a float scalar: 1.5e-8 off
    }
  HostTensor rm = store.read(mean), rv = store.read(var);
  for (int64_t f = 0; f < features; ++f) {
    const double m1 = 0.1 * s.mean[f], v1 = 0.9 + 0.1 * s.unbiased[f];  // after the first application
    CHECK(rm.at(f) == Approx(0.9 * m1 + 0.1 * 2 * s.mean[f]).epsilon(1e-6));
    CHECK(rv.at(f) == Approx(0.9 * v1 + 0.1 * 4 * s.unbiased[f]).epsilon(1e-6));
  }

  // Evaluation: the running statistics, no state updates.
  Graph e;
  GraphParams q(e, store);
  Value xe = input(e, {rows, features}, "x", DType::f64);
  Value ye = bn(q, xe, Mode::eval);
  CHECK(q.updates().empty());
  Executor ee(compile({ye}));
  feed_input(ee, xe, x_values());
  ee.run();
  HostTensor oe = ee.read(ye);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t f = 0; f < features; ++f)
      CHECK(oe.at(r * features + f) ==
            Approx((x_at(r, f) - rm.at(f)) / std::sqrt(rv.at(f) + 1e-5) * w.at(f) + b.at(f)).epsilon(1e-7));
  CHECK(values(store.read(mean)) == values(rm));

  CHECK_THROWS_WITH(bn(q, input(e, {rows, features + 1}, "wide", DType::f64), Mode::eval),
                    Catch::Contains("bn.weight") && Catch::Contains("[5, 4]"));
  CHECK_THROWS_WITH(bn(q, input(e, {1, features}, "one", DType::f64), Mode::train), Catch::Contains("at least 2"));
}

TEST_CASE("batch norm's gradient through the batch statistics matches central differences", "[batchnorm][gradcheck]") {
  ParamStore store(Device::cpu, DType::f64, 3);
  Linear layer(store, "linear", 4, features);
  BatchNorm1d bn(store, "bn", features);
  Linear head(store, "head", features, 2);
  Graph g;
  GraphParams p(g, store);
  Value x = input(g, {rows, 4}, "x", DType::f64);
  // A nonlinearity after the layer, so the gradient of every statistic reaches the loss.
  Value loss = sum(square(tanh(head(p, bn(p, layer(p, x), Mode::train)))));
  std::vector<double> xs;
  for (int64_t i = 0; i < rows * 4; ++i) xs.push_back(std::cos(0.7 * double(i)));
  // The differences' error on the biases falls tenfold per decade of h (3.3e-4 at h = 1e-4,
  // 3.3e-7 at 1e-7): the analytic gradient is their limit, not off by a constant.
  double last = 1;
  for (double h : {1e-5, 1e-6, 1e-7}) {
    const double worst = max_gradient_error(p, loss, [&](Executor& ex) { feed_input(ex, x, xs); }, h);
    INFO("h " << h << ": worst relative error " << worst);
    CHECK(worst < 50 * h);
    CHECK(worst < last / 5);
    last = worst;
  }
}

TEST_CASE("running statistics are checkpointed state that no optimiser touches", "[batchnorm][trainer]") {
  ModelConfig c;
  c.kind = "catvae";
  c.sizes = {64, 16, 20};
  auto model = make_model(c, Device::cpu);
  ParamStore& store = model->params();
  const int mean = store.find("encoder.bn0.running_mean");
  REQUIRE(mean >= 0);
  const std::vector<int> trainable = model->all_params();
  CHECK(std::find(trainable.begin(), trainable.end(), mean) == trainable.end());
  TrainConfig t;
  t.epochs = 1;
  t.batch_size = 30;
  t.optim.kind = "adam";
  Trainer trainer(*model, t);
  Generated data = generated_digits(90, 64);
  trainer.fit(data.view());
  CHECK(values(store.read(mean)) != std::vector<double>(16, 0.0));  // three updates, from the batches
  for (int slot : trainer.optimizer().state_slots())  // Adam's moments of a running statistic stay 0
    CHECK(values(store.read_state(slot, mean)) == std::vector<double>(16, 0.0));
  TrainerState s = trainer.save_state();
  bool saved = false;
  for (const auto& [name, tensor] : s.tensors) saved |= name == "param/encoder.bn0.running_mean";
  CHECK(saved);
}

TEST_CASE("two players in one step: the adversary has its own optimiser and checkpointed state", "[trainer][players]") {
  ModelConfig c;
  c.kind = "aae";
  c.sizes = {64, 16, 2};
  auto model = make_model(c, Device::cpu);
  ParamStore& store = model->params();
  const std::vector<Player> players = model->players();
  REQUIRE(players.size() == 1);
  const std::vector<int> ae = model->phases()[0].trainable, adversary = players[0].trainable;
  for (int i : adversary) CHECK(std::find(ae.begin(), ae.end(), i) == ae.end());
  TrainConfig t;
  t.epochs = 1;
  t.batch_size = 30;
  t.optim.kind = "adam";
  t.optim.lr = 0.01;
  Trainer trainer(*model, t);
  REQUIRE(trainer.optimisers().size() == 2);
  const std::vector<double> d_before = values(store.read(adversary[0])), e_before = values(store.read(ae[0]));
  Generated data = generated_digits(90, 64);
  trainer.fit(data.view());
  CHECK(values(store.read(adversary[0])) != d_before);
  CHECK(values(store.read(ae[0])) != e_before);
  CHECK(trainer.optimisers()[0]->steps_taken() == 3);
  CHECK(trainer.optimisers()[1]->steps_taken() == 3);
  TrainerState s = trainer.save_state();
  bool lr = false;
  for (const auto& [name, tensor] : s.tensors) lr |= name == "hyper/adversary.lr";
  CHECK(lr);
  // A model whose loss forgets to train its player is refused when the step is built.
  Graph g;
  GraphParams p(g, store);
  Batch b;
  b.x = input(g, {4, 64}, "x");
  b.step = constant(g, 0.0);
  std::vector<Optimizer*> only_one = {trainer.optimisers()[0]};
  CHECK_THROWS_WITH(build_step(*model, p, b, model->phases()[0], 0, only_one), Catch::Contains("2 players"));
}
