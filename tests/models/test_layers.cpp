// Layers: Linear's PyTorch-style initialisation (range, determinism from the seed), its forward
// value, tied decoders sharing the encoder's storage (one parameter, gradients summed over both
// uses), and the log-softmax / cross-entropy compositions.
#include <catch2/catch.hpp>

#include <cmath>

#include "helpers.h"
#include "models/autoencoder.h"

using namespace ag;
using namespace ag::models;
using namespace ag::models::testing;

TEST_CASE("Linear draws weight and bias from U(-1/sqrt(in), 1/sqrt(in)), reproducibly", "[layers]") {
  ParamStore a(Device::cpu, DType::f32, 7), b(Device::cpu, DType::f32, 7), c(Device::cpu, DType::f32, 8);
  Linear la(a, "fc", 100, 20), lb(b, "fc", 100, 20), lc(c, "fc", 100, 20);
  CHECK(a.count() == 2);
  CHECK(a.shape(la.weight()) == Shape{20, 100});
  CHECK(a.shape(la.bias()) == Shape{20});
  const double bound = 1.0 / std::sqrt(100.0);
  for (int i : {la.weight(), la.bias()}) {
    std::vector<double> va = values(a.read(i)), vb = values(b.read(i)), vc = values(c.read(i));
    double largest = 0;
    for (size_t k = 0; k < va.size(); ++k) {
      CHECK(std::abs(va[k]) <= bound);
      largest = std::max(largest, std::abs(va[k]));
    }
    CHECK(largest > 0.8 * bound);  // the whole range is used, not a narrower one
    CHECK(va == vb);               // same seed, same values
    CHECK(va != vc);               // another seed, other values
  }
}

TEST_CASE("Linear computes x W^T + b", "[layers]") {
  ParamStore store(Device::cpu, DType::f64, 1);
  Linear fc(store, "fc", 3, 2);
  Graph g;
  GraphParams p(g, store);
  Value x = input(g, Shape{2, 3}, "x", DType::f64);
  Value y = fc(p, x);
  CHECK(y.shape() == Shape{2, 2});
  Executor ex(compile({y}));
  const std::vector<double> xs = {1, 2, 3, -1, 0.5, 0};
  feed_input(ex, x, xs);
  ex.run();
  std::vector<double> W = values(store.read(fc.weight())), bias = values(store.read(fc.bias())), got = values(ex.read(y));
  for (int r = 0; r < 2; ++r)
    for (int o = 0; o < 2; ++o) {
      double expected = bias[size_t(o)];
      for (int i = 0; i < 3; ++i) expected += xs[size_t(r * 3 + i)] * W[size_t(o * 3 + i)];
      CHECK(got[size_t(r * 2 + o)] == Approx(expected).epsilon(1e-12));
    }
}

TEST_CASE("a tied decoder shares the encoder's weight: one parameter, gradients from both uses", "[layers][tied]") {
  ModelConfig c;
  c.kind = "ae";
  c.sizes = {4, 3};
  c.activation = "sigmoid";
  c.tied = true;
  auto model = make_model(c, Device::cpu, DType::f64);
  ParamStore& store = model->params();
  REQUIRE(store.count() == 3);  // encoder.weight, encoder.bias, decoder.bias
  CHECK(store.find("decoder.weight") < 0);
  auto& ae = dynamic_cast<Autoencoder&>(*model);
  CHECK(ae.decoder().weight() == ae.encoder().weight());
  CHECK(ae.decoder().tied());
  CHECK(ae.decoder().params() == std::vector<int>{store.find("decoder.bias")});

  Graph g;
  GraphParams p(g, store);
  Batch b;
  b.x = input(g, Shape{2, 4}, "x", DType::f64);
  const std::vector<double> xs = {0.1, 0.9, 0.4, 0.0, 1.0, 0.3, 0.5, 0.7};
  // The reconstruction is sigmoid(h W + b2) with the encoder's own W.
  Value z = model->logits(p, b.x);
  Executor ex(compile({z}));
  feed_input(ex, b.x, xs);
  ex.run();
  std::vector<double> W = values(store.read(0)), b1 = values(store.read(1)), b2 = values(store.read(2));
  std::vector<double> got = values(ex.read(z));
  for (int r = 0; r < 2; ++r) {
    double h[3];
    for (int j = 0; j < 3; ++j) {
      double a = b1[size_t(j)];
      for (int i = 0; i < 4; ++i) a += xs[size_t(r * 4 + i)] * W[size_t(j * 4 + i)];
      h[j] = 1 / (1 + std::exp(-a));
    }
    for (int i = 0; i < 4; ++i) {
      double expected = b2[size_t(i)];
      for (int j = 0; j < 3; ++j) expected += h[j] * W[size_t(j * 4 + i)];
      CHECK(got[size_t(r * 4 + i)] == Approx(expected).epsilon(1e-12));
    }
  }
  // The weight's gradient must add both paths; central differences see both.
  Value loss = model->loss(p, b, 0);
  CHECK(max_gradient_error(p, loss, [&](Executor& e) { feed_input(e, b.x, xs); }) < 1e-6);
}

TEST_CASE("log_softmax normalises each row and cross_entropy is its negated mean pick", "[layers]") {
  Graph g;
  HostTensor zs(Shape{2, 3}, DType::f64), targets(Shape{2, 3}, DType::f64);
  const double z[6] = {1.0, 2.0, 3.0, -50.0, 0.0, 40.0};
  for (int i = 0; i < 6; ++i) {
    zs.set(i, z[i]);
    targets.set(i, i == 0 || i == 4 ? 1.0 : 0.0);
  }
  Value logits = constant(g, zs);
  Value ls = log_softmax(logits), ce = cross_entropy(logits, constant(g, targets));
  Executor ex(compile({ls, ce}));
  ex.run();
  std::vector<double> got = values(ex.read(ls));
  double expected_ce = 0;
  for (int r = 0; r < 2; ++r) {
    double norm = 0;
    for (int k = 0; k < 3; ++k) norm += std::exp(z[r * 3 + k]);
    for (int k = 0; k < 3; ++k) CHECK(got[size_t(r * 3 + k)] == Approx(z[r * 3 + k] - std::log(norm)).epsilon(1e-12));
    expected_ce -= (r == 0 ? z[0] : z[4]) - std::log(norm);
  }
  CHECK(ex.read_scalar(ce) == Approx(expected_ce / 2).epsilon(1e-12));
}
