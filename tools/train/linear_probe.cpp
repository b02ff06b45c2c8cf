// Codes of a data set, and the linear probe: a softmax layer trained on standardised codes with
// Adam, as graph nodes like every model. Batches are gathered straight into the executors'
// input buffers; a second plan of the remainder's size covers evaluation's last batch.
#include "tools/train/linear_probe.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include <fmt/format.h>

#include "graph/aegraph.h"
#include "models/data.h"
#include "models/layers.h"
#include "models/optim.h"

namespace ag::tools {
namespace {

// A compiled forward pass over `rows` inputs of `dim` values, producing `out`.
struct ForwardPlan {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>();
  Value x, out;
  std::unique_ptr<Executor> exec;
};

// Runs `plan_for(size)` over every row of `data` in batches of up to `batch`, handing each
// batch's output (rows x width) to `consume(first_row, rows, values)`.
template <class PlanFor, class Consume>
void forward_all(const float* data, int64_t n, int dim, int64_t batch, PlanFor&& plan_for, Consume&& consume) {
  std::unique_ptr<ForwardPlan> full, rest;
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t rows = std::min(batch, n - first);
    std::unique_ptr<ForwardPlan>& plan = rows == batch ? full : rest;
    if (!plan) plan = plan_for(rows);
    std::copy(data + first * dim, data + (first + rows) * dim, plan->exec->input(plan->x).ptr<float>());
    plan->exec->run();
    HostTensor values = plan->exec->read(plan->out);
    consume(first, rows, values);
  }
}

}  // namespace

std::vector<float> compute_codes(models::Model& model, const float* images, int64_t n) {
  const int dim = model.input_dim(), code = model.code_dim();
  std::vector<float> codes(size_t(n * code));
  auto plan_for = [&](int64_t rows) {
    auto plan = std::make_unique<ForwardPlan>();
    models::GraphParams p(*plan->graph, model.params());
    plan->x = input(*plan->graph, Shape{rows, dim}, "x");
    plan->out = model.encode(p, plan->x);
    plan->exec = std::make_unique<Executor>(compile({plan->out}), model.device());
    return plan;
  };
  forward_all(images, n, dim, 1000, plan_for, [&](int64_t first, int64_t rows, const HostTensor& values) {
    std::copy(values.ptr<float>(), values.ptr<float>() + rows * code, codes.begin() + first * code);
  });
  return codes;
}

ProbeResult linear_probe(const LabelledCodes& train, const LabelledCodes& test, int dim, int classes,
                         const ProbeConfig& config, Device device) {
  if (train.n < 1 || test.n < 1) throw Error("linear probe: needs training and test codes");
  // Centre each feature and divide all by one scale, the training codes' RMS: codes of
  // different models differ in scale by orders of magnitude, and one learning rate should suit
  // them all. One scale, not one per feature: a unit that fires for a handful of images would be
  // blown up to hundreds by its own tiny deviation, and the logits with it. Adam adapts its step
  // per weight, so features need not share a variance.
  std::vector<double> mean(size_t(dim), 0.0);
  for (int64_t i = 0; i < train.n; ++i)
    for (int j = 0; j < dim; ++j) mean[size_t(j)] += train.codes[i * dim + j];
  for (double& m : mean) m /= double(train.n);
  double square_sum = 0;
  for (int64_t i = 0; i < train.n; ++i)
    for (int j = 0; j < dim; ++j) square_sum += std::pow(train.codes[i * dim + j] - mean[size_t(j)], 2);
  const double scale = std::sqrt(square_sum / double(train.n * dim)) + 1e-12;
  auto standardised = [&](const LabelledCodes& set) {
    std::vector<float> out(size_t(set.n * dim));
    for (int64_t i = 0; i < set.n; ++i)
      for (int j = 0; j < dim; ++j) out[size_t(i * dim + j)] = float((set.codes[i * dim + j] - mean[size_t(j)]) / scale);
    return out;
  };
  const std::vector<float> train_x = standardised(train), test_x = standardised(test);

  ParamStore store(device, DType::f32, config.seed);
  models::Linear layer(store, "probe", dim, classes);
  models::OptimConfig adam;
  adam.kind = "adam";
  adam.lr = config.lr;
  std::unique_ptr<models::Optimizer> optimizer = models::Optimizer::make(adam, store);

  // Training drops the last partial batch: a probe needs no second plan for it. A small set
  // gets smaller batches, so an epoch is still about 20 steps.
  const int64_t batch = std::min<int64_t>(config.batch, std::max<int64_t>(1, train.n / 20));
  Graph graph;
  models::GraphParams p(graph, store);
  Value x = input(graph, Shape{batch, dim}, "codes");
  Value y = input(graph, Shape{batch, classes}, "labels");
  Value loss = models::cross_entropy(layer(p, x), y);
  std::vector<Value> outputs = {loss};
  for (Value v : optimizer->step(p, layer.params(), grad(loss, p.leaves(layer.params())))) outputs.push_back(v);
  Executor step(compile(outputs), device);
  float* x_host = step.input(x).ptr<float>();
  float* y_host = step.input(y).ptr<float>();
  std::vector<int64_t> order(size_t(train.n));
  for (int epoch = 0; epoch < config.epochs; ++epoch) {
    models::shuffled_order(order.data(), train.n, config.seed, uint64_t(epoch));
    for (int64_t k = 0; k + batch <= train.n; k += batch) {
      models::gather_rows(x_host, train_x.data(), dim, order.data() + k, batch);
      models::gather_one_hot(y_host, train.labels, classes, order.data() + k, batch);
      step.run();
    }
  }

  auto plan_for = [&](int64_t rows) {
    auto plan = std::make_unique<ForwardPlan>();
    models::GraphParams q(*plan->graph, store);
    plan->x = input(*plan->graph, Shape{rows, dim}, "codes");
    plan->out = layer(q, plan->x);
    plan->exec = std::make_unique<Executor>(compile({plan->out}), device);
    return plan;
  };
  auto error_of = [&](const std::vector<float>& codes, const LabelledCodes& set) {
    int64_t wrong = 0;
    forward_all(codes.data(), set.n, dim, 1000, plan_for, [&](int64_t first, int64_t rows, const HostTensor& logits) {
      const float* z = logits.ptr<float>();
      for (int64_t i = 0; i < rows; ++i) {
        const float* row = z + i * classes;
        wrong += int64_t(std::max_element(row, row + classes) - row) != int64_t(set.labels[first + i]);
      }
    });
    return double(wrong) / double(set.n);
  };
  return ProbeResult{error_of(train_x, train), error_of(test_x, test)};
}

}  // namespace ag::tools
