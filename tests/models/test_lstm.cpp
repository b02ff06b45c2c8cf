// The LSTM stack (models/lstm.h) against a direct implementation of torch.nn.LSTM's equations in
// double loops, its parameters named and initialised as PyTorch's, and its gradient (two layers,
// the initial state from another LSTM's final state) against central differences in f64.
#include <catch2/catch.hpp>

#include <cmath>

#include "helpers.h"
#include "models/lstm.h"

using namespace ag;
using namespace ag::models;
using namespace ag::models::testing;

namespace {

double sig(double v) { return 1 / (1 + std::exp(-v)); }

// One layer over xs[t] (B x in, row-major) from (h, c), PyTorch's equations, gates i, f, g, o.
std::vector<std::vector<double>> reference_layer(const std::vector<std::vector<double>>& xs, int batch, int in, int hid,
                                                 const std::vector<double>& wih, const std::vector<double>& whh,
                                                 const std::vector<double>& bih, const std::vector<double>& bhh,
                                                 std::vector<double>& h, std::vector<double>& c) {
  std::vector<std::vector<double>> hs;
  for (const auto& x : xs) {
    std::vector<double> hn(h.size()), cn(c.size());
    for (int b = 0; b < batch; ++b)
      for (int u = 0; u < hid; ++u) {
        double z[4];
        for (int k = 0; k < 4; ++k) {
          const int row = k * hid + u;
          double s = bih[size_t(row)] + bhh[size_t(row)];
          for (int j = 0; j < in; ++j) s += wih[size_t(row * in + j)] * x[size_t(b * in + j)];
          for (int j = 0; j < hid; ++j) s += whh[size_t(row * hid + j)] * h[size_t(b * hid + j)];
          z[k] = s;
        }
        const size_t e = size_t(b * hid + u);
        cn[e] = sig(z[1]) * c[e] + sig(z[0]) * std::tanh(z[2]);
        hn[e] = sig(z[3]) * std::tanh(cn[e]);
      }
    h = hn;
    c = cn;
    hs.push_back(h);
  }
  return hs;
}

}  // namespace

TEST_CASE("an LSTM stack computes torch.nn.LSTM's equations, named and initialised as PyTorch's", "[lstm]") {
  const int batch = 3, in = 5, hid = 4, steps = 4;
  ParamStore store(Device::cpu, DType::f64, 7);
  Lstm lstm(store, "enc", in, hid, 2);
  CHECK(store.name(0) == "enc.weight_ih_l0");
  CHECK(store.shape(0) == Shape{16, 5});
  CHECK(store.name(5) == "enc.weight_hh_l1");
  CHECK(store.shape(5) == Shape{16, 4});
  Graph g;
  GraphParams p(g, store);
  Value x = input(g, {batch, steps * in}, "x", DType::f64);
  std::vector<LstmState> state;
  std::vector<Value> hs = lstm(p, split_steps(x, in), state);
  REQUIRE(hs.size() == size_t(steps));
  std::vector<Value> outs = hs;
  outs.push_back(state[0].c);
  outs.push_back(state[1].c);
  Executor ex(compile(outs));
  std::vector<double> xv(size_t(batch * steps * in));
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = std::sin(double(i) * 1.3);
  feed_input(ex, x, xv);
  ex.run();

  const float bound = 1 / std::sqrt(float(hid));  // U(-1/sqrt(H), 1/sqrt(H)) for every tensor
  for (int i = 0; i < store.count(); ++i)
    for (double v : values(store.read(i))) CHECK(std::abs(v) <= bound);

  std::vector<std::vector<double>> seq(steps, std::vector<double>(size_t(batch * in)));
  for (int t = 0; t < steps; ++t)
    for (int b = 0; b < batch; ++b)
      for (int j = 0; j < in; ++j) seq[size_t(t)][size_t(b * in + j)] = xv[size_t(b * steps * in + t * in + j)];
  std::vector<double> c0;
  for (int layer = 0; layer < 2; ++layer) {
    std::vector<double> h(size_t(batch * hid), 0.0), c(size_t(batch * hid), 0.0);
    const int width = layer == 0 ? in : hid;
    seq = reference_layer(seq, batch, width, hid, values(store.read(4 * layer)), values(store.read(4 * layer + 1)),
                          values(store.read(4 * layer + 2)), values(store.read(4 * layer + 3)), h, c);
    std::vector<double> got_c = values(ex.read(state[size_t(layer)].c));
    for (size_t e = 0; e < c.size(); ++e) CHECK(got_c[e] == Approx(c[e]).margin(1e-12));
  }
  for (int t = 0; t < steps; ++t) {
    std::vector<double> got = values(ex.read(hs[size_t(t)]));
    for (size_t e = 0; e < got.size(); ++e) CHECK(got[e] == Approx(seq[size_t(t)][e]).margin(1e-12));
  }
}

TEST_CASE("an LSTM decoder started from an encoder's final state has the gradient of central differences", "[lstm][gradcheck]") {
  const int batch = 2, in = 3, hid = 4, steps = 3;
  ParamStore store(Device::cpu, DType::f64, 11);
  Lstm encoder(store, "enc", in, hid, 2), decoder(store, "dec", in, hid, 2);
  Graph g;
  GraphParams p(g, store);
  Value x = input(g, {batch, steps * in}, "x", DType::f64);
  std::vector<LstmState> state;
  encoder(p, split_steps(x, in), state);
  std::vector<Value> hs = decoder(p, split_steps(x * 0.5f, in), state);  // each layer from the encoder's
  Value loss = sum(square(concat(hs, 1))) + sum(state[1].c * state[0].h);
  std::vector<double> xv(size_t(batch * steps * in));
  for (size_t i = 0; i < xv.size(); ++i) xv[i] = std::cos(double(i) * 0.9);
  const double error = max_gradient_error(p, loss, [&](Executor& ex) { feed_input(ex, x, xv); });
  CHECK(error < 1e-6);  // the bound the other models' checks use
}
