// build_step: see models/train_step.h.
#include "models/train_step.h"

#include <fmt/format.h>

#include "backends/communicator.h"

namespace ag::models {

namespace {

// At most this many elements a bucket (4 MiB of f32), and at most 8 parts: a small model's
// gradients still form several buckets, so the first sum starts before the backward pass ends.
constexpr int64_t bucket_elements = int64_t(1) << 20;
constexpr size_t bucket_parts = 8;

// The gradients of share * loss in `leaves`, summed over the ranks; with `summed_loss`, also
// share * loss summed (the global objective), which goes first. Buckets take the gradients from
// the last parameter back, the order in which the backward pass completes them, and that order
// depends on the parameters alone, so every rank's buckets are the same.
std::vector<Value> summed_over_ranks(Value loss, const std::vector<Value>& leaves, double share, Value* summed_loss) {
  Graph& g = *loss.graph;
  std::vector<Value> grads = grad(loss, leaves, constant(g, share, loss.shape(), loss.dtype()));
  std::vector<Value> parts;
  if (summed_loss) parts.push_back(loss * float(share));
  for (size_t k = grads.size(); k-- > 0;) parts.push_back(grads[k]);
  std::vector<Value> summed;
  for (size_t at = 0; at < parts.size();) {
    std::vector<Value> bucket = {parts[at++]};
    int64_t elements = bucket[0].shape().numel();
    while (at < parts.size() && bucket.size() < bucket_parts && elements + parts[at].shape().numel() <= bucket_elements) {
      elements += parts[at].shape().numel();
      bucket.push_back(parts[at++]);
    }
    for (Value v : allreduce_sum_each(bucket)) summed.push_back(v);
  }
  if (summed_loss) *summed_loss = summed[0];
  std::vector<Value> out(grads.size());
  for (size_t k = 0; k < grads.size(); ++k) out[k] = summed[summed.size() - 1 - k];
  return out;
}

}  // namespace

StepGraph build_step(Model& model, GraphParams& p, Batch batch, const Phase& phase, int phase_index,
                     const std::vector<Optimizer*>& optimisers, double share) {
  const std::vector<Player> players = model.players();
  const bool parallel = communicator().size() > 1;
  if (!parallel && share != 1.0)
    throw Error(fmt::format("training step: a share of {} of the batch, but this process is the only rank", share));
  auto gradients = [&](Value loss, const std::vector<Value>& leaves, Value* summed_loss) {
    if (parallel) return summed_over_ranks(loss, leaves, share, summed_loss);
    if (summed_loss) *summed_loss = loss;
    return grad(loss, leaves);
  };
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
    for (Value v : optimisers[size_t(k) + 1]->step(p, own, gradients(loss, p.leaves(own), nullptr))) s.outputs.push_back(v);
    // Later players read the new values as constants: no gradient flows back into this update.
    for (int i : own) p.advance(i, stop_gradient(p[i]));
  };
  const Value loss = model.loss(p, batch, phase_index);
  for (size_t k = 0; k < players.size(); ++k)
    if (!trained[k])
      throw Error(fmt::format("training step: model '{}' did not train its player '{}'", model.config().kind,
                              players[k].name));
  std::vector<Value> grads = gradients(loss, p.leaves(phase.trainable), &s.loss);
  s.outputs[0] = s.loss;
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
