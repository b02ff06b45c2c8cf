// Building and running one training step, mirroring models::Trainer::train_plan and fill_batch.
#include "tools/aebench/training_step.h"

#include <algorithm>

#include <fmt/format.h>

#include "models/data.h"
#include "models/train_step.h"

namespace ag::bench {

models::OptimConfig tutorial_optimiser(const std::string& kind) {
  models::OptimConfig o;
  o.kind = models::default_optimiser(kind);
  o.lr = o.kind == "adam" ? 1e-3 : 0.01;
  o.grad_clamp = models::default_grad_clamp(kind);
  return o;
}

BatchOrder::BatchOrder(int64_t n, int64_t batch, uint64_t seed) : order_(size_t(n)), batch_(batch), seed_(seed) {
  if (batch <= 0 || batch > n)
    throw Error(fmt::format("training step: batch {} does not fit a data set of {} examples", batch, n));
  reshuffle();
}

void BatchOrder::reshuffle() {
  models::shuffled_order(order_.data(), int64_t(order_.size()), seed_, stream_++);
  at_ = 0;
}

const int64_t* BatchOrder::next() {
  if (at_ + batch_ > int64_t(order_.size())) reshuffle();
  const int64_t* rows = order_.data() + at_;
  at_ += batch_;
  return rows;
}

TrainingStep::TrainingStep(const models::ModelConfig& config, const models::OptimConfig& optim, Device device,
                           int64_t batch, const std::string& phase)
    : model_(models::make_model(config, device)), counters_(device, DType::f32, 0), device_(device), batch_(batch) {
  if (batch <= 0) throw Error(fmt::format("training step: batch size must be positive, not {}", batch));
  const std::vector<models::Phase> phases = model_->phases();
  auto chosen = phase.empty() ? phases.begin()
                              : std::find_if(phases.begin(), phases.end(),
                                             [&](const models::Phase& p) { return p.name == phase; });
  if (chosen == phases.end()) {
    std::string names;
    for (const models::Phase& p : phases) names += (names.empty() ? "" : ", ") + p.name;
    throw Error(fmt::format("training step: model '{}' has no phase '{}' (it has: {})", config.kind, phase, names));
  }
  const models::Phase& ph = *chosen;
  const int phase_index = int(chosen - phases.begin());
  phase_name_ = ph.name;
  optimizer_ = models::Optimizer::make(optim, model_->params());
  player_optimisers_ = models::make_player_optimisers(*model_, optim);
  const int step = counters_.add("step", Shape{}, Init::Zeros());
  const int loss_sum = counters_.add("loss_sum", Shape{}, Init::Zeros());

  Graph& g = *graph_;
  models::GraphParams p(g, model_->params()), counters(g, counters_);
  models::Batch b;
  b.x = input(g, Shape{batch, model_->input_dim()}, "x");
  b.step = counters[step];
  if (ph.uses_labels) b.labels = input(g, Shape{batch, model_->classes()}, "labels");
  if (model_->corrupts_on_host()) b.corrupted = input(g, b.x.shape(), "corrupted");
  std::vector<models::Optimizer*> optimisers = {optimizer_.get()};
  for (auto& o : player_optimisers_) optimisers.push_back(o.get());
  models::StepGraph s = models::build_step(*model_, p, b, ph, phase_index, optimisers);
  loss_ = s.loss;
  std::vector<Value> outputs = std::move(s.outputs);
  Value sum = counters[loss_sum];
  outputs.push_back(assign(sum, sum + loss_ * float(batch)));
  outputs.push_back(assign(b.step, b.step + 1.0f));  // last: the noise above read the old count
  exec_ = std::make_unique<Executor>(compile(outputs), device);
  x_host_ = exec_->input(b.x).ptr<float>();
  if (b.labels.valid()) labels_host_ = exec_->input(b.labels).ptr<float>();
  if (b.corrupted.valid()) corrupted_host_ = exec_->input(b.corrupted).ptr<float>();
}

TrainingStep::~TrainingStep() = default;

void TrainingStep::gather(const models::DataView& data, const int64_t* rows) {
  if (data.dim != model_->input_dim())
    throw Error(fmt::format("training step: the data has {} values per example but the model takes {}", data.dim,
                            model_->input_dim()));
  models::gather_rows(x_host_, data.images, data.dim, rows, batch_);
  if (labels_host_) {
    if (!data.labels) throw Error(fmt::format("training step: phase '{}' needs labels", phase_name_));
    models::gather_one_hot(labels_host_, data.labels, model_->classes(), rows, batch_);
  }
  if (corrupted_host_) model_->corrupt_on_host(x_host_, corrupted_host_, batch_, data.dim, steps_);
}

void TrainingStep::run() {
  exec_->run();
  ++steps_;
}

void TrainingStep::synchronize() { backend(device_).synchronize(); }

double TrainingStep::loss() { return exec_->read_scalar(loss_); }

}  // namespace ag::bench
