// The contractive penalty mean_batch ||J_f(x)||_F^2 against a Jacobian built by central
// differences in f64 (closed form for a sigmoid encoder; double backward for a tanh encoder,
// exact and by random projection), and gradient checks of the penalty itself, which exercise
// second derivatives through the graph.
#include <catch2/catch.hpp>

#include "helpers.h"
#include "models/autoencoder.h"
#include "models/contractive.h"

using namespace ag;
using namespace ag::models;
using namespace ag::models::testing;

namespace {

constexpr int64_t batch = 2, dim = 5, code = 3;

std::vector<double> example_inputs() {
  std::vector<double> x(size_t(batch * dim));
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.1 + 0.8 * double((i * 7) % 11) / 10.0;
  return x;
}

std::unique_ptr<Model> tiny_cae(const std::string& activation) {
  ModelConfig c;
  c.kind = "cae";
  c.sizes = {int(dim), int(code)};
  c.activation = activation;
  c.jacobian = "exact";
  c.seed = 3;
  return make_model(c, Device::cpu, DType::f64);
}

// mean_b sum_ji (d h_bj / d x_bi)^2 by central differences of the encoder, in f64.
double finite_difference_penalty(Model& model) {
  Graph g;
  GraphParams p(g, model.params());
  Value x = input(g, Shape{batch, dim}, "x", DType::f64);
  Value h = model.encode(p, x);
  Executor ex(compile({h}));
  const std::vector<double> x0 = example_inputs();
  const double step = 1e-6;
  double total = 0;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < dim; ++i) {
      std::vector<double> up = x0, down = x0;
      up[size_t(b * dim + i)] += step;
      down[size_t(b * dim + i)] -= step;
      feed_input(ex, x, up);
      ex.run();
      HostTensor hu = ex.read(h);
      feed_input(ex, x, down);
      ex.run();
      HostTensor hd = ex.read(h);
      for (int64_t j = 0; j < code; ++j) {
        double d = (hu.at(b * code + j) - hd.at(b * code + j)) / (2 * step);
        total += d * d;
      }
    }
  return total / double(batch);
}

// The penalty as the graph computes it, by the named method.
double graph_penalty(Model& model, const std::string& method, int draws = 1) {
  Graph g;
  GraphParams p(g, model.params());
  Value x = input(g, Shape{batch, dim}, "x", DType::f64);
  Value h = model.encode(p, x);
  Value step = constant(g, 0.0, Shape{}, DType::f64);
  Value penalty = method == "closed" ? contractive_closed_form(h, p[model.params().find("encoder.weight")])
                  : method == "exact" ? contractive_exact(h, x)
                                      : contractive_projection(h, x, step, 11, draws);
  Executor ex(compile({penalty}));
  feed_input(ex, x, example_inputs());
  ex.run();
  return ex.read_scalar(penalty);
}

}  // namespace

TEST_CASE("the closed-form penalty of a sigmoid encoder is ||J||_F^2 by finite differences", "[cae]") {
  auto model = tiny_cae("sigmoid");
  const double reference = finite_difference_penalty(*model);
  CHECK(reference > 0);
  CHECK(graph_penalty(*model, "closed") == Approx(reference).epsilon(1e-7));
  CHECK(graph_penalty(*model, "exact") == Approx(reference).epsilon(1e-7));
}

TEST_CASE("double backward gives ||J||_F^2 of any encoder (tanh)", "[cae]") {
  auto model = tiny_cae("tanh");
  const double reference = finite_difference_penalty(*model);
  CHECK(graph_penalty(*model, "exact") == Approx(reference).epsilon(1e-7));
  // E_v ||J^T v||^2 = ||J||_F^2; 400 draws put the estimate within a few percent.
  CHECK(graph_penalty(*model, "projection", 400) == Approx(reference).epsilon(0.15));
}

TEST_CASE("the penalty's gradient passes a central-difference check (second derivatives)", "[cae][gradcheck]") {
  for (std::string activation : {"sigmoid", "tanh"})
    for (std::string method : {"closed", "exact"}) {
      if (method == "closed" && activation != "sigmoid") continue;
      auto model = tiny_cae(activation);
      Graph g;
      GraphParams p(g, model->params());
      Value x = input(g, Shape{batch, dim}, "x", DType::f64);
      Value h = model->encode(p, x);
      Value penalty = method == "closed" ? contractive_closed_form(h, p[model->params().find("encoder.weight")])
                                         : contractive_exact(h, x);
      INFO(activation << " encoder, " << method << " penalty");
      CHECK(max_gradient_error(p, penalty, [&](Executor& ex) { feed_input(ex, x, example_inputs()); }) < 1e-6);
    }
}

TEST_CASE("the contractive model's whole loss passes a gradient check", "[cae][gradcheck]") {
  auto model = tiny_cae("sigmoid");
  Graph g;
  GraphParams p(g, model->params());
  Batch b;
  b.x = input(g, Shape{batch, dim}, "x", DType::f64);
  b.step = constant(g, 0.0, Shape{}, DType::f64);
  Value loss = model->loss(p, b, 0);
  CHECK(max_gradient_error(p, loss, [&](Executor& ex) { feed_input(ex, b.x, example_inputs()); }) < 1e-6);
}
