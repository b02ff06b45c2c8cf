// Optimisers against their closed forms: one and two steps of SGD (plain, momentum, Nesterov,
// weight decay), Adagrad (lr decay, initial accumulator), Adam and AdamW, each computed by hand
// here in double precision, on the f64 loss 1/2 ||w - c||^2 whose gradient is w - c. Also: the
// learning rate changes between runs without recompiling, reset() starts over, and every
// parameter and state update is computed straight into its buffer (assign elision).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "models/optim.h"

using namespace ag;
using namespace ag::models;

namespace {

const std::vector<double> start = {0.5, -1.25, 2.0, 0.0, -0.3, 1.7};
const std::vector<double> target = {0.1, 0.4, -0.6, 1.0, -0.3, 0.25};

// One optimiser over one [2, 3] f64 parameter, its step compiled once.
struct Rig {
  ParamStore store{Device::cpu, DType::f64, 0};
  int w = store.add("w", Shape{2, 3}, Init::Zeros());
  std::unique_ptr<Optimizer> opt;
  Graph g;
  std::unique_ptr<Executor> ex;

  explicit Rig(const OptimConfig& c) {
    opt = Optimizer::make(c, store);
    HostTensor init(Shape{2, 3}, DType::f64);
    for (int i = 0; i < 6; ++i) init.set(i, start[size_t(i)]);
    store.write(w, init);
    GraphParams p(g, store);
    HostTensor c_values(Shape{2, 3}, DType::f64);
    for (int i = 0; i < 6; ++i) c_values.set(i, target[size_t(i)]);
    Value loss = sum(square(p[w] - constant(g, c_values))) * 0.5f;
    std::vector<Value> outputs = opt->step(p, {w}, grad(loss, {p[w]}));
    ex = std::make_unique<Executor>(compile(outputs));
  }
  std::vector<double> run() {
    ex->run();
    HostTensor h = store.read(w);
    std::vector<double> out(6);
    for (int i = 0; i < 6; ++i) out[size_t(i)] = h.at(i);
    return out;
  }
};

// The reference: PyTorch's update rules, written out for one element at a time.
struct Reference {
  OptimConfig c;
  std::vector<double> p = start, s1 = std::vector<double>(6, 0.0), s2 = std::vector<double>(6, 0.0);
  int t = 0;

  explicit Reference(const OptimConfig& config) : c(config) {
    if (c.kind == "adagrad") s1.assign(6, c.initial_accumulator);
  }
  void step(double lr) {
    ++t;
    const double wd = c.resolved_weight_decay(), eps = c.resolved_eps();
    for (size_t i = 0; i < 6; ++i) {
      double g = p[i] - target[i];
      if (c.grad_clamp > 0) g = std::clamp(g, -c.grad_clamp, c.grad_clamp);
      if (c.kind == "sgd") {
        g += wd * p[i];
        if (c.momentum > 0) {
          s1[i] = c.momentum * s1[i] + g;  // PyTorch's first step: buf = g
          g = c.nesterov ? g + c.momentum * s1[i] : s1[i];
        }
        p[i] -= lr * g;
      } else if (c.kind == "adagrad") {
        g += wd * p[i];
        double clr = lr / (1 + (t - 1) * c.lr_decay);
        s1[i] += g * g;
        p[i] -= clr * g / (std::sqrt(s1[i]) + eps);
      } else {
        if (c.kind == "adamw") p[i] *= 1 - lr * wd;
        else g += wd * p[i];
        s1[i] = c.beta1 * s1[i] + (1 - c.beta1) * g;
        s2[i] = c.beta2 * s2[i] + (1 - c.beta2) * g * g;
        double bc1 = 1 - std::pow(c.beta1, t), bc2 = 1 - std::pow(c.beta2, t);
        p[i] -= lr / bc1 * s1[i] / (std::sqrt(s2[i]) / std::sqrt(bc2) + eps);
      }
    }
  }
};

void check_steps(const OptimConfig& c, int steps) {
  Rig rig(c);
  Reference ref(c);
  for (int s = 0; s < steps; ++s) {
    std::vector<double> got = rig.run();
    ref.step(c.lr);
    for (size_t i = 0; i < 6; ++i) {
      INFO("step " << s + 1 << " element " << i);
      CHECK(got[i] == Approx(ref.p[i]).epsilon(1e-12).margin(1e-14));
    }
  }
  CHECK(rig.opt->steps_taken() == steps);
}

OptimConfig config(std::string kind, double lr) {
  OptimConfig c;
  c.kind = std::move(kind);
  c.lr = lr;
  return c;
}

}  // namespace

TEST_CASE("SGD matches its closed form", "[optim]") {
  OptimConfig c = config("sgd", 0.1);
  SECTION("plain, one step: w - lr (w - c)") {
    Rig rig(c);
    std::vector<double> got = rig.run();
    for (size_t i = 0; i < 6; ++i) CHECK(got[i] == Approx(start[i] - 0.1 * (start[i] - target[i])).epsilon(1e-12));
  }
  SECTION("plain, two steps") { check_steps(c, 2); }
  SECTION("momentum") {
    c.momentum = 0.9;
    check_steps(c, 2);
  }
  SECTION("Nesterov with weight decay") {
    c.momentum = 0.8;
    c.nesterov = true;
    c.weight_decay = 0.05;
    check_steps(c, 3);
  }
}

TEST_CASE("Adagrad matches its closed form (the tutorial's optimiser)", "[optim]") {
  OptimConfig c = config("adagrad", 0.5);
  SECTION("one step: w - lr g / (|g| + eps)") {
    Rig rig(c);
    std::vector<double> got = rig.run();
    for (size_t i = 0; i < 6; ++i) {
      double g = start[i] - target[i];
      CHECK(got[i] == Approx(start[i] - 0.5 * g / (std::abs(g) + 1e-10)).epsilon(1e-12).margin(1e-14));
    }
  }
  SECTION("two steps") { check_steps(c, 2); }
  SECTION("lr decay, initial accumulator, weight decay") {
    c.lr_decay = 0.3;
    c.initial_accumulator = 0.2;
    c.weight_decay = 0.01;
    check_steps(c, 3);
  }
}

TEST_CASE("Adam and AdamW match their closed forms with bias correction", "[optim]") {
  SECTION("Adam, one step moves every coordinate by lr sign(g)") {
    OptimConfig c = config("adam", 0.01);
    Rig rig(c);
    std::vector<double> got = rig.run();
    for (size_t i = 0; i < 6; ++i) {
      double g = start[i] - target[i];
      double expected = g == 0 ? start[i] : start[i] - 0.01 * g / (std::abs(g) + 1e-8);
      CHECK(got[i] == Approx(expected).epsilon(1e-12).margin(1e-14));
    }
  }
  SECTION("Adam, two steps") { check_steps(config("adam", 0.01), 2); }
  SECTION("Adam with L2 weight decay") {
    OptimConfig c = config("adam", 0.05);
    c.weight_decay = 0.1;
    c.beta1 = 0.5;
    check_steps(c, 3);
  }
  SECTION("AdamW decays the weights directly (default 0.01)") {
    OptimConfig c = config("adamw", 0.05);
    CHECK(c.resolved_weight_decay() == 0.01);
    check_steps(c, 2);
  }
}

TEST_CASE("a gradient clamp limits each element before the update, fused into it", "[optim]") {
  // The gradients are 0.4, -1.65, 2.6, -1, 0, 1.45: a clamp at 1 cuts three of them.
  for (const char* kind : {"sgd", "adagrad", "adam"}) {
    INFO(kind);
    OptimConfig c = config(kind, 0.05);
    c.grad_clamp = 1.0;
    check_steps(c, 3);
    Rig rig(c);
    const Plan& plan = rig.ex->plan();
    int clamps = 0;
    for (int id = 0; id < rig.g.size(); ++id) {
      if (rig.g.node(id).op != OpCode::clamp || plan.storage[size_t(id)] == Storage::none) continue;
      ++clamps;
      CHECK(plan.group[size_t(id)] >= 0);  // part of the update's group: the clamped gradient is never stored
    }
    CHECK(clamps == 1);
  }
  ParamStore store;
  store.add("w", Shape{2}, Init::Zeros());
  OptimConfig bad = config("adam", 0.1);
  bad.grad_clamp = -1;
  CHECK_THROWS_WITH(Optimizer::make(bad, store), Catch::Contains("grad_clamp"));
}

TEST_CASE("the learning rate changes between runs without recompiling", "[optim]") {
  OptimConfig c = config("sgd", 0.1);
  c.momentum = 0.5;
  Rig rig(c);
  Reference ref(c);
  rig.run();
  ref.step(0.1);
  rig.opt->set_lr(0.03);
  CHECK(rig.opt->lr() == Approx(0.03));
  std::vector<double> got = rig.run();
  ref.step(0.03);
  for (size_t i = 0; i < 6; ++i) CHECK(got[i] == Approx(ref.p[i]).epsilon(1e-12).margin(1e-14));
}

TEST_CASE("reset() makes the optimiser fresh: state and step count", "[optim]") {
  OptimConfig c = config("adam", 0.01);
  Rig rig(c);
  std::vector<double> first = rig.run();
  rig.run();
  rig.opt->reset();
  CHECK(rig.opt->steps_taken() == 0);
  HostTensor back(Shape{2, 3}, DType::f64);
  for (int i = 0; i < 6; ++i) back.set(i, start[size_t(i)]);
  rig.store.write(rig.w, back);
  std::vector<double> again = rig.run();
  for (size_t i = 0; i < 6; ++i) CHECK(again[i] == first[i]);
}

TEST_CASE("updates are computed straight into the parameter and state buffers, in one pass", "[optim][plan]") {
  for (const char* kind : {"sgd", "adagrad", "adam", "adamw"}) {
    OptimConfig c = config(kind, 0.1);
    if (c.kind == "sgd") c.momentum = 0.9;
    Rig rig(c);
    const Plan& plan = rig.ex->plan();
    INFO(kind << "\n" << plan.describe());
    // Every parameter assign is an elided step; every state assign is stored by the fusion
    // group that computes the parameter's update (no copies, one loop over the memory).
    int params = 0, states = 0, update = -1;  // update: the value the parameter's assign stores
    for (int id = 0; id < rig.g.size(); ++id)
      if (rig.g.node(id).op == OpCode::assign && rig.g.node(rig.g.node(id).in[0]).name == "w") update = rig.g.node(id).in[1];
    for (int id = 0; id < rig.g.size(); ++id) {
      const Node& node = rig.g.node(id);
      if (node.op != OpCode::assign || plan.storage[size_t(id)] == Storage::none) continue;
      const std::string& target = rig.g.node(node.in[0]).name;
      if (target == "t") continue;  // the step count is read after its increment is computed
      INFO("assign to " << target);
      const bool is_step = std::find(plan.steps.begin(), plan.steps.end(), id) != plan.steps.end();
      if (target == "w") {  // named "w" by the rig
        ++params;
        CHECK(is_step);
        CHECK(plan.elided[size_t(id)]);
      } else {
        ++states;
        CHECK(!is_step);
        CHECK(plan.group[size_t(id)] == update);
      }
    }
    CHECK(params == 1);
    CHECK(states == (c.kind == "adam" || c.kind == "adamw" ? 2 : 1));
  }
}

TEST_CASE("bad optimiser settings are refused with the field named", "[optim]") {
  ParamStore store;
  store.add("w", Shape{2}, Init::Zeros());
  OptimConfig c;
  c.kind = "rmsprop";
  CHECK_THROWS_WITH(Optimizer::make(c, store), Catch::Contains("rmsprop"));
  c = config("sgd", -1);
  CHECK_THROWS_WITH(Optimizer::make(c, store), Catch::Contains("lr"));
  c = config("adagrad", 0.1);
  c.nesterov = true;
  CHECK_THROWS_WITH(Optimizer::make(c, store), Catch::Contains("nesterov"));
  c = config("adam", 0.1);
  c.beta2 = 1.0;
  CHECK_THROWS_WITH(Optimizer::make(c, store), Catch::Contains("beta2"));
}

// The CPU backend runs the usual optimiser updates as loops compiled ahead of time
// (backends/cpu/compiled_groups.h) instead of its fused-group interpreter. Both must give the
// same bits: here on an f32 and an f64 weight big enough for two threads, its gradient a matrix
// product as in the models (with values of many sizes, and rows of exact zeros), over three
// steps (Adam's bias corrections change each step). The counter shows which kinds took a
// compiled loop, so that a change to models/optim.cpp's formulas that no longer matches one
// is noticed.
TEST_CASE("compiled optimiser updates give the interpreter's bits", "[optim]") {
  struct Kind {
    const char* kind;
    double momentum = 0, weight_decay = 0;
    bool nesterov = false;
  };
  const Kind kinds[] = {{"sgd"},  {"sgd", 0.9},     {"sgd", 0.9, 0, true}, {"adagrad"}, {"adagrad", 0, 0.01},
                        {"adam"}, {"adam", 0, 0.01}, {"adamw"}};
  for (DType dtype : {DType::f32, DType::f64})
    for (const Kind& k : kinds) {
      INFO(k.kind << " momentum " << k.momentum << " nesterov " << k.nesterov << " weight decay " << k.weight_decay
                  << (dtype == DType::f32 ? " f32" : " f64"));
      OptimConfig c = config(k.kind, 0.01);
      c.momentum = k.momentum;
      c.nesterov = k.nesterov;
      if (k.weight_decay > 0) c.weight_decay = k.weight_decay;
      // loss = 1/2 ||x w - y||^2: w's gradient x^T (x w - y) is a matrix product; x's zero
      // columns make zero rows of it. w has 21000 elements: two threads.
      const Shape ws{300, 70}, xs{8, 300}, ys{8, 70};
      HostTensor w0(ws, dtype), x(xs, dtype), y(ys, dtype);
      uint32_t r = 12345;
      auto uniform = [&] { return double((r = r * 1664525u + 1013904223u) >> 8) / double(1 << 24) - 0.5; };
      for (int64_t i = 0; i < ws.numel(); ++i) w0.set(i, uniform() * std::ldexp(1.0, int(64 * (uniform() + 0.5)) - 40));
      for (int64_t i = 0; i < xs.numel(); ++i) x.set(i, i % 300 % 7 == 0 ? 0.0 : uniform());
      for (int64_t i = 0; i < ys.numel(); ++i) y.set(i, uniform());
      auto train = [&](bool compiled) {
        set_cpu_compiled_groups(compiled);
        ParamStore store{Device::cpu, dtype, 0};
        const int w = store.add("w", ws, Init::Zeros());
        store.write(w, w0);
        std::unique_ptr<Optimizer> opt = Optimizer::make(c, store);
        Graph g;
        GraphParams p(g, store);
        Value loss = sum(square(matmul(constant(g, x), p[w]) - constant(g, y))) * 0.5f;
        Executor ex(compile(opt->step(p, {w}, grad(loss, {p[w]}))));
        const int64_t before = cpu_compiled_group_runs();
        for (int s = 0; s < 3; ++s) ex.run();
        const int64_t runs = cpu_compiled_group_runs() - before;
        set_cpu_compiled_groups(true);
        std::vector<HostTensor> out{store.read(w)};
        for (int s = 0; s < store.state_count(); ++s) out.push_back(store.read_state(s, w));
        return std::pair(out, runs);
      };
      const auto [fast, runs] = train(true);
      const auto [slow, none] = train(false);
      CHECK(none == 0);
      INFO("runs " << runs);
      CHECK(runs == 3);
      REQUIRE(fast.size() == slow.size());
      for (size_t t = 0; t < fast.size(); ++t) {
        INFO("tensor " << t << " (0: the weight, then the optimiser's state)");
        CHECK(std::memcmp(fast[t].ptr<std::byte>(), slow[t].ptr<std::byte>(), ws.numel() * dtype_size(dtype)) == 0);
      }
    }
}
