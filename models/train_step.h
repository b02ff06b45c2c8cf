// The training step the trainer and aebench both compile, written once: the model's objective
// for a phase, each extra player trained where the model's loss() asks (Batch::minimise), the
// phase optimiser's update, and the state updates the model made (batch norm's running
// statistics). The caller appends its own counters (loss sum, step) and compiles.
#pragma once
#include <vector>

#include "models/model.h"
#include "models/optim.h"

namespace ag::models {

struct StepGraph {
  Value loss;                  // the phase's objective
  std::vector<Value> outputs;  // loss first, then every update
};

// `optimisers`: the phase's first, then one per model.players(), in order. batch.mode is set
// to train. Throws ag::Error when loss() trains a player twice or not at all.
//
// Data parallel (the installed communicator has several ranks, backends/communicator.h): the
// batch is this rank's part of a global batch, `share` = its rows / the global batch's. Every
// gradient is then that of share * loss, summed over the ranks by allreduce_sum nodes in buckets
// (the last layers' first, as the backward pass makes them, so each bucket may go while earlier
// layers' gradients are computed), which is the gradient of the global batch's mean objective;
// s.loss is that objective (the shares' weighted sum, in the first bucket), the same on every
// rank, and so is every update. One rank: share must be 1 and nothing is added.
StepGraph build_step(Model& model, GraphParams& p, Batch batch, const Phase& phase, int phase_index,
                     const std::vector<Optimizer*>& optimisers, double share = 1.0);

// One optimiser per player of `model` (none for most models), configured like the phase's.
std::vector<std::unique_ptr<Optimizer>> make_player_optimisers(Model& model, const OptimConfig& config);

}  // namespace ag::models
