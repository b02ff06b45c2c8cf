// Optimisers as graph nodes. Each parameter's update is a few elementwise nodes ending in
// assign(param, new_value), which the plan computes straight into the parameter. Optimiser
// state (momentum, accumulators, moments) lives in ParamStore state slots parallel to the
// parameters; hyperparameters and the step count t live in a small store of scalar tensors
// owned by the optimiser, so a compiled step never changes: set_lr() between epochs just
// writes a tensor, and t is advanced by an assign(t, t + 1) node in the step itself.
// Semantics follow PyTorch (torch.optim.SGD, Adagrad, Adam, AdamW).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "graph/aegraph.h"
#include "models/layers.h"

namespace ag::models {

struct OptimConfig {
  std::string kind = "adagrad";          // sgd | adagrad | adam | adamw
  double lr = 0.01;
  std::optional<double> weight_decay;    // default 0; AdamW 0.01 (decoupled)
  std::optional<double> eps;             // default Adagrad 1e-10, Adam/AdamW 1e-8
  double momentum = 0;                   // sgd (dampening is 0)
  bool nesterov = false;                 // sgd, needs momentum > 0
  double lr_decay = 0;                   // adagrad: lr / (1 + (t - 1) lr_decay)
  double initial_accumulator = 0;        // adagrad
  double beta1 = 0.9, beta2 = 0.999;     // adam, adamw
  double grad_clamp = 0;                 // > 0: each gradient element clamped to [-c, c] first

  double resolved_weight_decay() const;
  double resolved_eps() const;
  void validate() const;  // throws ag::Error naming the bad field
};

class Optimizer {
 public:
  // Adds the optimiser's state slots to `params` (before or after first use, either works).
  static std::unique_ptr<Optimizer> make(const OptimConfig& config, ParamStore& params);
  virtual ~Optimizer() = default;

  // Appends to p's graph the update of parameters `indices` given their gradients (from
  // ag::grad), and the t <- t + 1 counter update. Returns the nodes to compile as outputs.
  // p[i] reads the updated parameter afterwards (GraphParams::advance).
  // Call once per compiled step graph; every such graph shares state and hyperparameters.
  std::vector<Value> step(GraphParams& p, const std::vector<int>& indices, const std::vector<Value>& grads);

  void set_lr(double lr);   // takes effect at the next run, no recompiling
  double lr();
  int64_t steps_taken();    // t: updates applied since the last reset()
  void reset();             // state back to its initial fill, t = 0 (a fresh optimiser)

  const OptimConfig& config() const { return config_; }
  ParamStore& params() { return *params_; }
  ParamStore& hyper() { return hyper_; }                         // lr, t, ...: scalars, for checkpoints
  const std::vector<int>& state_slots() const { return slots_; }  // in params(), for checkpoints

 protected:
  Optimizer(const OptimConfig& config, ParamStore& params);
  // Appends the scalars every parameter's update shares this step (lr and t, the step count
  // including this update, are the optimiser's leaves in this graph).
  virtual void begin(GraphParams& hyper, Value lr, Value t) = 0;
  // Appends the update of one parameter: state assigns, then assign(param, new value).
  virtual void update(GraphParams& p, int index, Value param, Value g, std::vector<Value>& outputs) = 0;
  int add_hyper(const std::string& name, double value);  // a scalar in hyper()
  void write_hypers();                                    // their exact values, once all are declared
  int add_slot(const std::string& name, double fill);    // a state slot in params()
  Value state_leaf(Graph& g, int slot, int index);        // the slot's view of one parameter

  OptimConfig config_;
  ParamStore* params_;
  ParamStore hyper_;
  std::vector<int> slots_;
  std::vector<double> slot_fill_;
  std::vector<double> hyper_values_;
  int lr_ = -1, t_ = -1;  // indices in hyper_
};

}  // namespace ag::models
