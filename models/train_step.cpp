// build_step: see models/train_step.h.
#include "models/train_step.h"

#include <fmt/format.h>

namespace ag::models {

StepGraph build_step(Model& model, GraphParams& p, Batch batch, const Phase& phase, int phase_index,
                     const std::vector<Optimizer*>& optimisers) {
  const std::vector<Player> players = model.players();
  if (optimisers.size() != players.size() + 1)
    throw Error(fmt::format("training step: model '{}' has {} players but {} optimisers were given", model.config().kind,
                            players.size() + 1, optimisers.size()));
  StepGraph s;
  s.outputs.emplace_back();  // the loss, once there is one
  std::vector<int> trained(players.size(), 0);
  batch.mode = Mode::train;
  batch.minimise = [&](int k, Value loss) {
    if (k < 0 || size_t(k) >= players.size() || trained[size_t(k)]++)
      throw Error(fmt::format("training step: model '{}' trains player {} twice or has no such player",
                              model.config().kind, k));
    const std::vector<int>& own = players[size_t(k)].trainable;
    for (Value v : optimisers[size_t(k) + 1]->step(p, own, grad(loss, p.leaves(own)))) s.outputs.push_back(v);
    // Later players read the new values as constants: no gradient flows back into this update.
    for (int i : own) p.advance(i, stop_gradient(p[i]));
  };
  s.loss = s.outputs[0] = model.loss(p, batch, phase_index);
  for (size_t k = 0; k < players.size(); ++k)
    if (!trained[k])
      throw Error(fmt::format("training step: model '{}' did not train its player '{}'", model.config().kind,
                              players[k].name));
  std::vector<Value> grads = grad(s.loss, p.leaves(phase.trainable));
  for (Value v : optimisers[0]->step(p, phase.trainable, grads)) s.outputs.push_back(v);
  for (Value v : p.updates()) s.outputs.push_back(v);
  return s;
}

std::vector<std::unique_ptr<Optimizer>> make_player_optimisers(Model& model, const OptimConfig& config) {
  std::vector<std::unique_ptr<Optimizer>> out;
  for (size_t k = 0; k < model.players().size(); ++k) out.push_back(Optimizer::make(config, model.params()));
  return out;
}

}  // namespace ag::models
