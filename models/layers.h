// Building blocks for model code: GraphParams (a store's parameters as leaves of one graph,
// so every use of a parameter shares one node and grad() sees them all) and Linear (a dense
// layer initialised like PyTorch's default, or a tied decoder reading an encoder's weight
// transposed). Written with the public graph API only, so it runs on any device.
#pragma once
#include <string>
#include <vector>

#include "graph/aegraph.h"

namespace ag::models {

// The parameters of one ParamStore as external leaves of one graph. A parameter's leaf is made
// on first use and reused after, so a weight applied twice (a tied decoder, a layer shared by
// two paths) is one node, and its gradient is the sum over all uses.
class GraphParams {
 public:
  GraphParams(Graph& graph, ParamStore& store) : graph_(&graph), store_(&store) {}

  Value operator[](int index);                                 // the leaf of parameter `index`
  std::vector<Value> leaves(const std::vector<int>& indices);  // several at once, in order
  Graph& graph() const { return *graph_; }
  ParamStore& store() const { return *store_; }

  // Writes `value` into entry `index` when the plan runs (batch norm's running statistics):
  // the assign is kept in updates(), which a training step compiles as outputs, and p[index]
  // reads the new value from then on, so a layer applied twice updates its state twice, in order.
  Value update(int index, Value value);
  // From now on p[index] is `updated`, the result of an assign to it made elsewhere (an
  // optimiser's update): what a later player of the step builds reads the new parameters.
  void advance(int index, Value updated);
  const std::vector<Value>& updates() const { return updates_; }

 private:
  Graph* graph_;
  ParamStore* store_;
  std::vector<Value> leaves_;  // per parameter index; invalid until first use
  std::vector<Value> roots_;   // the external leaves, which updates assign to
  std::vector<Value> updates_;
};

// Which graph a model is writing: the training step (batch statistics, state updates) or an
// evaluation (running statistics, deterministic). Chosen when the graph is built.
enum class Mode { train, eval };

// y = x W^T + b with W [out, in], as torch.nn.Linear. Weight and bias are drawn from
// U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's default), deterministically from the store's seed and
// each parameter's index. A tied layer owns only its bias and computes y = x W_enc + b, the
// encoder's weight transposed through matmul's flag (no copy, one parameter).
class Linear {
 public:
  Linear() = default;
  // Declares "<name>.weight" [out, in] and, when `bias`, "<name>.bias" [out] in `store`.
  Linear(ParamStore& store, const std::string& name, int in, int out, bool bias = true);
  // The decoder tied to `encoder` (in -> out becomes out -> in); declares "<name>.bias" only.
  static Linear tied_to(ParamStore& store, const std::string& name, const Linear& encoder, bool bias = true);

  Value operator()(GraphParams& p, Value x) const;  // x [B, in] -> [B, out]

  int in() const { return in_; }
  int out() const { return out_; }
  int weight() const { return weight_; }  // parameter index (the encoder's, when tied)
  int bias() const { return bias_; }      // parameter index, -1 without a bias
  bool tied() const { return tied_; }
  std::vector<int> params() const;        // the indices this layer owns (a tied layer: its bias)

 private:
  int in_ = 0, out_ = 0;
  int weight_ = -1, bias_ = -1;
  bool tied_ = false;
};

// A convolution over NCHW images [B, in, H, W], as torch.nn.Conv2d with square kernels:
// weight [out, in, k, k] and bias [out] drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
// fan_in = in k k, PyTorch's default.
class Conv2d {
 public:
  Conv2d() = default;
  Conv2d(ParamStore& store, const std::string& name, int in, int out, int kernel, int stride = 1, int padding = 0);
  Value operator()(GraphParams& p, Value x) const;  // [B, in, H, W] -> [B, out, H', W']
  int weight() const { return weight_; }
  int bias() const { return bias_; }

 private:
  int weight_ = -1, bias_ = -1, stride_ = 1, padding_ = 0;
};

// A transposed convolution, as torch.nn.ConvTranspose2d: weight [in, out, k, k], bias [out];
// H' = (H - 1) stride - 2 padding + k + output_padding. PyTorch's default init takes fan_in
// from the weight's second axis: fan_in = out k k.
class ConvTranspose2d {
 public:
  ConvTranspose2d() = default;
  ConvTranspose2d(ParamStore& store, const std::string& name, int in, int out, int kernel, int stride = 1,
                  int padding = 0, int output_padding = 0);
  Value operator()(GraphParams& p, Value x) const;
  int weight() const { return weight_; }
  int bias() const { return bias_; }

 private:
  int weight_ = -1, bias_ = -1, stride_ = 1, padding_ = 0, output_padding_ = 0;
};

// Batch normalisation over the batch of [B, features], as torch.nn.BatchNorm1d: in training
// (x - mean) / sqrt(var + eps) * weight + bias with the batch's mean and biased variance, and
// running_mean, running_var <- (1 - momentum) running + momentum batch (the unbiased variance)
// as state updates; in evaluation the running statistics normalise. weight starts at 1, bias at
// 0, running_mean at 0, running_var at 1; the running statistics are not trainable.
class BatchNorm1d {
 public:
  BatchNorm1d() = default;
  BatchNorm1d(ParamStore& store, const std::string& name, int features);
  Value operator()(GraphParams& p, Value x, Mode mode) const;
  std::vector<int> params() const { return {weight_, bias_}; }
  static constexpr float eps = 1e-5f, momentum = 0.1f;

 private:
  int weight_ = -1, bias_ = -1, mean_ = -1, var_ = -1;
};

// Linear, BatchNorm1d, ReLU for each hidden size, then a Linear output: sizes {in, hidden...,
// out}, as nn.Sequential(Linear, BatchNorm1d, ReLU, ..., Linear). Layers "<name>.linear<k>" and
// "<name>.bn<k>".
class BatchNormMlp {
 public:
  BatchNormMlp() = default;
  BatchNormMlp(ParamStore& store, const std::string& name, const std::vector<int>& sizes);
  Value operator()(GraphParams& p, Value x, Mode mode) const;
  std::vector<int> params() const;  // the trainable ones (not the running statistics)

 private:
  std::vector<Linear> linear_;
  std::vector<BatchNorm1d> norm_;
};

// activation(layer(x)) by name ("relu", "sigmoid", "tanh", "softplus", "linear").
inline Value dense(GraphParams& p, const Linear& layer, Value x, const std::string& activation_name) {
  return activation(layer(p, x), activation_name);
}

// Elementwise helpers shared by several variants.
// log(softmax(z)) per row, z [B, C]: z - c - log(sum_k exp(z_k - c)), c the row mean (the graph
// has no max reduction; the row mean keeps exp in range for the logits of a small head).
Value log_softmax(Value z);
// Cross-entropy of logits z [B, C] against one-hot targets [B, C], mean over rows.
Value cross_entropy(Value z, Value one_hot);

}  // namespace ag::models
