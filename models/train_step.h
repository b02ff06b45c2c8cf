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
StepGraph build_step(Model& model, GraphParams& p, Batch batch, const Phase& phase, int phase_index,
                     const std::vector<Optimizer*>& optimisers);

// One optimiser per player of `model` (none for most models), configured like the phase's.
std::vector<std::unique_ptr<Optimizer>> make_player_optimisers(Model& model, const OptimConfig& config);

}  // namespace ag::models
