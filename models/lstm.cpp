// The LSTM stack of models/lstm.h.
#include "models/lstm.h"

#include <cmath>

#include <fmt/format.h>

namespace ag::models {

Lstm::Lstm(ParamStore& store, const std::string& name, int in, int hidden, int layers) : in_(in), hidden_(hidden) {
  if (in <= 0 || hidden <= 0 || layers <= 0)
    throw Error(fmt::format("Lstm '{}': input {}, hidden {} and layers {} must be positive", name, in, hidden, layers));
  const float r = 1.0f / std::sqrt(float(hidden));
  for (int k = 0; k < layers; ++k) {
    const int width = k == 0 ? in : hidden;
    weight_ih_.push_back(store.add(fmt::format("{}.weight_ih_l{}", name, k), Shape{4 * hidden, width}, Init::Uniform(-r, r)));
    weight_hh_.push_back(store.add(fmt::format("{}.weight_hh_l{}", name, k), Shape{4 * hidden, hidden}, Init::Uniform(-r, r)));
    bias_ih_.push_back(store.add(fmt::format("{}.bias_ih_l{}", name, k), Shape{4 * hidden}, Init::Uniform(-r, r)));
    bias_hh_.push_back(store.add(fmt::format("{}.bias_hh_l{}", name, k), Shape{4 * hidden}, Init::Uniform(-r, r)));
  }
}

Lstm::Weights Lstm::weights(GraphParams& p) const {
  Weights w;
  for (int k = 0; k < layers(); ++k) {
    w.w.push_back(concat({p[weight_ih_[size_t(k)]], p[weight_hh_[size_t(k)]]}, 1));
    w.b.push_back(p[bias_ih_[size_t(k)]] + p[bias_hh_[size_t(k)]]);
  }
  return w;
}

LstmState Lstm::cell(Value w, Value b, Value x, const LstmState& s) const {
  const int64_t batch = x.shape()[0], H = hidden_;
  Value h = s.h.valid() ? s.h : constant(*x.graph, 0.0, Shape{batch, H}, x.dtype());
  Value z = matmul(concat({x, h}, 1), w, false, true, b);  // [B, 4H]: i, f, g, o
  Value i = sigmoid(slice(z, 1, 0, H)), f = sigmoid(slice(z, 1, H, H));
  Value g = tanh(slice(z, 1, 2 * H, H)), o = sigmoid(slice(z, 1, 3 * H, H));
  Value c = s.c.valid() ? f * s.c + i * g : i * g;
  return {o * tanh(c), c};
}

Value Lstm::step(const Weights& w, Value x, std::vector<LstmState>& state) const {
  if (x.shape().rank != 2 || x.shape()[1] != in_)
    throw Error(fmt::format("Lstm: a step's input is {}, not [batch, {}]", x.shape().str(), in_));
  state.resize(size_t(layers()));
  for (int k = 0; k < layers(); ++k) {
    state[size_t(k)] = cell(w.w[size_t(k)], w.b[size_t(k)], x, state[size_t(k)]);
    x = state[size_t(k)].h;
  }
  return x;
}

std::vector<Value> Lstm::operator()(GraphParams& p, const std::vector<Value>& xs, std::vector<LstmState>& state) const {
  const Weights w = weights(p);
  std::vector<Value> hs;
  for (const Value& x : xs) hs.push_back(step(w, x, state));
  return hs;
}

std::vector<Value> split_steps(Value x, int64_t width) {
  const Shape& s = x.shape();
  if (s.rank != 2 || width <= 0 || s[1] % width != 0)
    throw Error(fmt::format("split_steps: {} is not a batch of rows of {} values", s.str(), width));
  std::vector<Value> steps;
  for (int64_t t = 0; t < s[1] / width; ++t) steps.push_back(slice(x, 1, t * width, width));
  return steps;
}

}  // namespace ag::models
