// One model's training step, compiled the way models::Trainer compiles it (the trainer keeps
// its plans private, both use models::build_step): the phase's loss, its gradients, the
// optimisers' updates, the model's state updates (batch norm), the loss-sum
// and step-counter assigns, all one plan. step() gathers a minibatch of shuffled rows straight
// into the executor's input buffer and runs the plan, so batch preparation is part of a step,
// as in training. The plan is exposed for what the benchmark reports about it (matrix
// products, arena size).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/aegraph.h"
#include "models/model.h"
#include "models/optim.h"
#include "models/trainer.h"

namespace ag::bench {

// The optimiser the tutorial trains a variant with: Adagrad lr 0.01, the vae Adam lr 1e-3.
models::OptimConfig tutorial_optimiser(const std::string& kind);

// The rows of the next minibatches: a shuffled permutation of 0..n-1 walked in order and
// drawn again (a new stream) when fewer than a batch of rows are left, as epochs do.
class BatchOrder {
 public:
  BatchOrder(int64_t n, int64_t batch, uint64_t seed);
  const int64_t* next();  // `batch` row indices
 private:
  void reshuffle();
  std::vector<int64_t> order_;
  int64_t batch_, at_ = 0;
  uint64_t seed_, stream_ = 0;
};

class TrainingStep {
 public:
  // `phase` names the model's training phase ("" for its first). Throws ag::Error naming a
  // phase the model does not have.
  TrainingStep(const models::ModelConfig& config, const models::OptimConfig& optim, Device device, int64_t batch,
               const std::string& phase = "");
  ~TrainingStep();
  TrainingStep(const TrainingStep&) = delete;
  TrainingStep& operator=(const TrainingStep&) = delete;

  void gather(const models::DataView& data, const int64_t* rows);  // the batch into the input buffer
  void run();          // one step on the gathered batch (asynchronous on CUDA)
  void synchronize();  // waits for the device
  double loss();       // this step's objective (synchronises)

  const Plan& plan() const { return exec_->plan(); }
  const std::string& phase_name() const { return phase_name_; }
  int64_t batch() const { return batch_; }
  int input_dim() const { return model_->input_dim(); }
  Device device() const { return device_; }

 private:
  std::unique_ptr<models::Model> model_;
  std::unique_ptr<models::Optimizer> optimizer_;
  std::vector<std::unique_ptr<models::Optimizer>> player_optimisers_;  // the model's players' (the AAE's adversary)
  ParamStore counters_;  // "step" (keys the noise) and "loss_sum", as the trainer's
  Device device_;
  int64_t batch_;
  std::string phase_name_;
  std::unique_ptr<Graph> graph_ = std::make_unique<Graph>();
  Value loss_;
  float* x_host_ = nullptr;
  float* labels_host_ = nullptr;
  float* corrupted_host_ = nullptr;
  int64_t steps_ = 0;
  std::unique_ptr<Executor> exec_;  // last: destroyed before the graph and stores it points into
};

}  // namespace ag::bench
