// LSTM layers as graph code, torch.nn.LSTM's definition (batch first, one direction): gates in
// PyTorch's order i, f, g, o; weight_ih [4H, in], weight_hh [4H, H], bias_ih and bias_hh [4H],
// every one drawn from U(-1/sqrt(H), 1/sqrt(H)); named "<name>.weight_ih_l<k>" and so on, as in
// PyTorch's state_dict. The recurrence is unrolled over time in the graph:
//   z_t = [x_t, h_{t-1}] [W_ih, W_hh]^T + (b_ih + b_hh)          one [B, 4H] product per step
//   c_t = sigmoid(f) c_{t-1} + sigmoid(i) tanh(g),  h_t = sigmoid(o) tanh(c_t)   one fused group
// The two weights are joined once per graph, not per step; autodiff makes the joined weight's
// gradient one product over all the steps. Projecting every step's input at once instead was
// measured no faster (docs/architecture.md).
#pragma once
#include <string>
#include <vector>

#include "models/layers.h"

namespace ag::models {

struct LstmState {
  Value h, c;  // [B, H] each; invalid: zeros (a fresh sequence)
};

// A stack of LSTM layers; layer k > 0 reads layer k-1's outputs.
class Lstm {
 public:
  Lstm() = default;
  Lstm(ParamStore& store, const std::string& name, int in, int hidden, int layers);

  // The joined weights and biases of every layer, as nodes of p's graph: build once per graph.
  struct Weights {
    std::vector<Value> w, b;  // per layer: [W_ih, W_hh] [4H, in + H], b_ih + b_hh [4H]
  };
  Weights weights(GraphParams& p) const;

  // One time step of every layer from input x [B, in]; `state` (one per layer, or empty for
  // zeros) becomes the new state. Returns the top layer's h [B, H].
  Value step(const Weights& w, Value x, std::vector<LstmState>& state) const;
  // A whole sequence, xs[t] [B, in]; returns the top layer's h per step; `state` as in step().
  std::vector<Value> operator()(GraphParams& p, const std::vector<Value>& xs, std::vector<LstmState>& state) const;

  int in() const { return in_; }
  int hidden() const { return hidden_; }
  int layers() const { return int(weight_ih_.size()); }

 private:
  LstmState cell(Value w, Value b, Value x, const LstmState& s) const;

  int in_ = 0, hidden_ = 0;
  std::vector<int> weight_ih_, weight_hh_, bias_ih_, bias_hh_;  // parameter indices per layer
};

// A sequence as steps: x [B, T * width] (rows of an image, each step a row) -> T slices [B, width]
// (the inverse: concat(steps, 1)).
std::vector<Value> split_steps(Value x, int64_t width);

}  // namespace ag::models
