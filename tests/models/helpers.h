// Shared by the model tests: small generated "digit" data (ten binary prototypes, each example
// one of them with a few pixels flipped, labelled by its prototype) and one-shot graph runs.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "graph/aegraph.h"
#include "models/model.h"
#include "models/trainer.h"

namespace ag::models::testing {

struct Generated {
  std::vector<float> images;
  std::vector<uint8_t> labels;
  int64_t n = 0;
  int dim = 0;
  DataView view() const { return DataView{images.data(), n, dim, labels.data()}; }
};

// n examples of `dim` pixels; `offset` picks a different (disjoint in noise) set, e.g. a test set.
inline Generated generated_digits(int64_t n, int dim, int64_t offset = 0) {
  Generated d;
  d.n = n;
  d.dim = dim;
  d.images.resize(size_t(n * dim));
  d.labels.resize(size_t(n));
  for (int64_t r = 0; r < n; ++r) {
    const int64_t proto = (r * 7 + offset) % 10;
    d.labels[size_t(r)] = uint8_t(proto);
    for (int64_t i = 0; i < dim; ++i) {
      bool on = ((i * 7 + proto * 131) % 97) < 30;
      bool flip = ((i * 13 + (r + offset) * 17) % 53) == 0;
      d.images[size_t(r * dim + i)] = float(on != flip);
    }
  }
  return d;
}

// Every model kind at a small size (empty sizes: the variant's default, the convolutional ones).
struct SmallVariant {
  std::string kind;
  std::vector<int> sizes;
};
inline const std::vector<SmallVariant>& small_variants() {
  static const std::vector<SmallVariant> v = {
      {"ae", {784, 16}},     {"dae", {784, 16}},         {"cae", {784, 16}},          {"sparse", {784, 16}},
      {"sae", {784, 32, 8}}, {"deep", {784, 32, 16, 4}}, {"vae", {784, 32, 4}},       {"conv", {}},
      {"upconv", {}},        {"convdae", {}},            {"wta", {784, 32}},          {"seq2seq", {784, 8}},
      {"catvae", {784, 32, 16, 20}},                     {"aae", {784, 32, 16, 2}},
  };
  return v;
}

// What the backend did in two steady epochs of one model's training (after a first epoch that
// compiles, runs eagerly and, on CUDA, captures): `short_epoch` batches, then twice as many. The
// difference between the two is what `short_epoch` more steps cost, so per-epoch work (the
// learning rate and counters written, the epoch's loss read once) cancels out of it.
struct StepCosts {
  BackendCounts short_epoch, long_epoch;
  int64_t extra_steps = 0;
  BackendCounts per_extra_steps() const { return long_epoch - short_epoch; }
};

inline StepCosts measure_step_costs(const std::string& kind, const std::vector<int>& sizes, Device device) {
  ModelConfig c;
  c.kind = kind;
  c.sizes = sizes;
  c.seed = 3;
  auto model = make_model(c, device);
  TrainConfig t;
  t.epochs = 3;
  t.batch_size = 20;
  t.seed = 3;
  t.optim.kind = default_optimiser(kind);
  t.optim.lr = t.optim.kind == "adam" ? 1e-3 : 0.01;
  t.optim.grad_clamp = default_grad_clamp(kind);
  Trainer trainer(*model, t);
  const int dim = model->input_dim();
  const Generated four = generated_digits(4 * t.batch_size, dim), eight = generated_digits(8 * t.batch_size, dim, 77);
  Backend& b = backend(device);
  StepCosts costs;
  trainer.run_epoch(four.view());  // compiles; on CUDA the first run is eager, the second captured
  const BackendCounts before = b.counts();
  trainer.run_epoch(four.view());
  const BackendCounts middle = b.counts();
  trainer.run_epoch(eight.view());
  costs.short_epoch = middle - before;
  costs.long_epoch = b.counts() - middle;
  costs.extra_steps = 4;
  return costs;
}

// Every element of v, as doubles.
inline std::vector<double> values(const HostTensor& h) {
  std::vector<double> out(size_t(h.numel()));
  for (int64_t i = 0; i < h.numel(); ++i) out[size_t(i)] = h.at(i);
  return out;
}

}  // namespace ag::models::testing

namespace ag::models::testing {

// Central differences (f64) of the scalar `loss` with respect to every element of every
// parameter of p's store, against grad(). Returns the largest |analytic - numeric| /
// max(1, |numeric|). `feed` writes the plan's inputs. The store must be f64.
// `every` > 1 checks every every-th element of each parameter only (for models with many).
template <class Feed>
double max_gradient_error(GraphParams& p, Value loss, Feed feed, double h = 1e-6, int64_t every = 1) {
  ParamStore& store = p.store();
  std::vector<int> all(size_t(store.count()));
  for (int i = 0; i < store.count(); ++i) all[size_t(i)] = i;
  std::vector<Value> leaves = p.leaves(all);
  std::vector<Value> grads = grad(loss, leaves);
  std::vector<Value> outputs = {loss};
  outputs.insert(outputs.end(), grads.begin(), grads.end());
  Executor ex(compile(outputs));
  feed(ex);
  ex.run();
  double worst = 0;
  for (int i = 0; i < store.count(); ++i) {
    HostTensor analytic = ex.read(grads[size_t(i)]);
    HostTensor w = store.read(i);
    for (int64_t j = 0; j < w.numel(); j += every) {
      const double keep = w.at(j);
      w.set(j, keep + h);
      store.write(i, w);
      ex.run();
      const double up = ex.read_scalar(loss);
      w.set(j, keep - h);
      store.write(i, w);
      ex.run();
      const double down = ex.read_scalar(loss);
      w.set(j, keep);
      store.write(i, w);
      const double numeric = (up - down) / (2 * h);
      worst = std::max(worst, std::abs(analytic.at(j) - numeric) / std::max(1.0, std::abs(numeric)));
    }
  }
  return worst;
}

// Writes `data` (numel values) into input v of the executor, whatever its dtype.
inline void feed_input(Executor& ex, Value v, const std::vector<double>& data) {
  Tensor t = ex.input(v);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (t.dtype == DType::f32) t.ptr<float>()[i] = float(data[size_t(i)]);
    else t.ptr<double>()[i] = data[size_t(i)];
  }
}

}  // namespace ag::models::testing
