// SGD, Adagrad, Adam and AdamW as graph nodes, PyTorch's update rules written as formulas over
// Values. Scalars shared by all parameters (learning-rate schedule, bias corrections) are
// computed once per step in begin(); update() writes one parameter's few elementwise nodes.
// A state update is assign(state, new_state) and the parameter update reads the assign's
// result, so the plan computes each new state straight into its slot (assign elision).
#include "models/optim.h"

#include <cmath>

#include <fmt/format.h>

namespace ag::models {

double OptimConfig::resolved_weight_decay() const {
  if (weight_decay) return *weight_decay;
  return kind == "adamw" ? 0.01 : 0.0;
}

double OptimConfig::resolved_eps() const {
  if (eps) return *eps;
  return kind == "adagrad" ? 1e-10 : 1e-8;
}

void OptimConfig::validate() const {
  if (kind != "sgd" && kind != "adagrad" && kind != "adam" && kind != "adamw")
    throw Error(fmt::format("optimiser: unknown kind '{}' (sgd, adagrad, adam, adamw)", kind));
  if (!(lr >= 0) || !std::isfinite(lr)) throw Error(fmt::format("optimiser: lr must be finite and >= 0, not {}", lr));
  if (!(resolved_weight_decay() >= 0)) throw Error("optimiser: weight_decay must be >= 0");
  if (!(resolved_eps() >= 0)) throw Error("optimiser: eps must be >= 0");
  if (!(momentum >= 0)) throw Error(fmt::format("optimiser: momentum must be >= 0, not {}", momentum));
  if (nesterov && (kind != "sgd" || momentum <= 0)) throw Error("optimiser: nesterov needs sgd with momentum > 0");
  if (!(lr_decay >= 0)) throw Error(fmt::format("optimiser: lr_decay must be >= 0, not {}", lr_decay));
  if (!(initial_accumulator >= 0)) throw Error("optimiser: initial_accumulator must be >= 0");
  if (!(beta1 >= 0 && beta1 < 1)) throw Error(fmt::format("optimiser: beta1 must be in [0, 1), not {}", beta1));
  if (!(grad_clamp >= 0) || !std::isfinite(grad_clamp))
    throw Error(fmt::format("optimiser: grad_clamp must be a finite number >= 0, not {}", grad_clamp));
  if (!(beta2 >= 0 && beta2 < 1)) throw Error(fmt::format("optimiser: beta2 must be in [0, 1), not {}", beta2));
}

Optimizer::Optimizer(const OptimConfig& config, ParamStore& params)
    : config_(config), params_(&params), hyper_(params.device(), params.dtype(), 0) {
  lr_ = add_hyper("lr", config.lr);
  t_ = add_hyper("t", 0);
}

int Optimizer::add_hyper(const std::string& name, double value) {
  hyper_values_.push_back(value);
  return hyper_.add(name, Shape{}, Init::Constant(float(value)));
}

void Optimizer::write_hypers() {
  for (int i = 0; i < hyper_.count(); ++i) {  // Init::Constant is f32; an f64 store gets the exact value
    HostTensor v(Shape{}, hyper_.dtype());
    v.set(0, hyper_values_[size_t(i)]);
    hyper_.write(i, v);
  }
}

int Optimizer::add_slot(const std::string& name, double fill) {
  int slot = -1;
  for (int s = 0; s < params_->state_count(); ++s)
    if (params_->state_name(s) == name) slot = s;  // a second optimiser on the same model reuses it
  if (slot < 0) slot = params_->add_state(name, fill);
  slots_.push_back(slot);
  slot_fill_.push_back(fill);
  return slot;
}

Value Optimizer::state_leaf(Graph& g, int slot, int index) {
  return external(g, params_->state(slot, index), fmt::format("{}/{}", params_->state_name(slot), params_->name(index)));
}

std::vector<Value> Optimizer::step(GraphParams& p, const std::vector<int>& indices, const std::vector<Value>& grads) {
  if (&p.store() != params_) throw Error("optimiser: the GraphParams belong to another store");
  if (indices.size() != grads.size())
    throw Error(fmt::format("optimiser: {} parameters but {} gradients", indices.size(), grads.size()));
  GraphParams h(p.graph(), hyper_);
  Value t = h[t_];
  Value t_new = t + 1.0f;  // PyTorch counts the update being made: the first one has t = 1
  begin(h, h[lr_], t_new);
  std::vector<Value> outputs;
  // The clamp is one more elementwise node in front of each update, so the plan fuses it into
  // the update's group (the gradient is read once, clamped in the block, never stored).
  const float c = float(config_.grad_clamp);
  for (size_t k = 0; k < indices.size(); ++k) {
    update(p, indices[k], p[indices[k]], c > 0 ? clamp(grads[k], -c, c) : grads[k], outputs);
    p.advance(indices[k], outputs.back());  // update() ends with assign(param, new value)
  }
  outputs.push_back(assign(t, t_new));  // last: everything above read the old count
  return outputs;
}

void Optimizer::set_lr(double lr) {
  if (!(lr >= 0) || !std::isfinite(lr)) throw Error(fmt::format("optimiser: lr must be finite and >= 0, not {}", lr));
  HostTensor v(Shape{}, hyper_.dtype());
  v.set(0, lr);
  hyper_.write(lr_, v);
}

double Optimizer::lr() { return hyper_.read(lr_).at(0); }
int64_t Optimizer::steps_taken() { return int64_t(hyper_.read(t_).at(0)); }

void Optimizer::reset() {
  HostTensor zero(Shape{}, hyper_.dtype());
  zero.set(0, 0);
  hyper_.write(t_, zero);
  for (size_t k = 0; k < slots_.size(); ++k)
    for (int i = 0; i < params_->count(); ++i) {
      HostTensor fill(params_->shape(i), params_->dtype());
      for (int64_t j = 0; j < fill.numel(); ++j) fill.set(j, slot_fill_[k]);
      params_->write_state(slots_[k], i, fill);
    }
}

namespace {

// torch.optim.SGD, dampening 0: g += wd p; buf = mu buf + g; g = nesterov ? g + mu buf : buf;
// p -= lr g. (PyTorch's first step sets buf = g, which is mu * 0 + g.)
class Sgd final : public Optimizer {
 public:
  Sgd(const OptimConfig& c, ParamStore& params) : Optimizer(c, params) {
    wd_ = add_hyper("weight_decay", c.resolved_weight_decay());
    if (c.momentum > 0) {
      mu_ = add_hyper("momentum", c.momentum);
      buf_ = add_slot("sgd.momentum", 0);
    }
  }
  void begin(GraphParams& h, Value lr, Value) override {
    lr_v_ = lr;
    wd_v_ = h[wd_];
    mu_v_ = mu_ >= 0 ? h[mu_] : Value{};
  }
  void update(GraphParams& p, int i, Value param, Value g, std::vector<Value>& out) override {
    if (config_.resolved_weight_decay() > 0) g = g + wd_v_ * param;
    if (mu_ >= 0) {
      Value buf = state_leaf(p.graph(), buf_, i);
      Value buf_new = assign(buf, mu_v_ * buf + g);
      out.push_back(buf_new);
      g = config_.nesterov ? g + mu_v_ * buf_new : buf_new;
    }
    out.push_back(assign(param, param - lr_v_ * g));
  }

 private:
  int wd_ = -1, mu_ = -1, buf_ = -1;
  Value lr_v_, wd_v_, mu_v_;
};

// torch.optim.Adagrad: clr = lr / (1 + (t - 1) lr_decay); g += wd p; sum += g^2;
// p -= clr g / (sqrt(sum) + eps).
class Adagrad final : public Optimizer {
 public:
  Adagrad(const OptimConfig& c, ParamStore& params) : Optimizer(c, params) {
    wd_ = add_hyper("weight_decay", c.resolved_weight_decay());
    decay_ = add_hyper("lr_decay", c.lr_decay);
    eps_ = add_hyper("eps", c.resolved_eps());
    sum_ = add_slot("adagrad.sum", c.initial_accumulator);
  }
  void begin(GraphParams& h, Value lr, Value t) override {
    clr_ = lr / ((t - 1.0f) * h[decay_] + 1.0f);
    wd_v_ = h[wd_];
    eps_v_ = h[eps_];
  }
  void update(GraphParams& p, int i, Value param, Value g, std::vector<Value>& out) override {
    if (config_.resolved_weight_decay() > 0) g = g + wd_v_ * param;
    Value sum = state_leaf(p.graph(), sum_, i);
    Value sum_new = assign(sum, sum + square(g));
    out.push_back(sum_new);
    out.push_back(assign(param, param - clr_ * g / (sqrt(sum_new) + eps_v_)));
  }

 private:
  int wd_ = -1, decay_ = -1, eps_ = -1, sum_ = -1;
  Value clr_, wd_v_, eps_v_;
};

// torch.optim.Adam / AdamW: (Adam) g += wd p, (AdamW) p *= 1 - lr wd;
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), the division by sqrt(1 - b2^t) as a
// multiplication by its reciprocal.
class Adam final : public Optimizer {
 public:
  Adam(const OptimConfig& c, ParamStore& params, bool decoupled) : Optimizer(c, params), decoupled_(decoupled) {
    wd_ = add_hyper("weight_decay", c.resolved_weight_decay());
    b1_ = add_hyper("beta1", c.beta1);
    b2_ = add_hyper("beta2", c.beta2);
    eps_ = add_hyper("eps", c.resolved_eps());
    m_ = add_slot("adam.exp_avg", 0);
    v_ = add_slot("adam.exp_avg_sq", 0);
  }
  void begin(GraphParams& h, Value lr, Value t) override {
    b1_v_ = h[b1_];
    b2_v_ = h[b2_];
    eps_v_ = h[eps_];
    wd_v_ = h[wd_];
    // b^t = exp(t log b); beta = 0 gives exp(-inf) = 0, as it should.
    step_size_ = lr / (1.0f - exp(t * log(b1_v_)));
    // 1 / sqrt(1 - b2^t), so that each element multiplies where PyTorch divides: the elementwise
    // update then has one division instead of two, and it was bound by the divider (Adam on a
    // 784 x 400 weight, two threads: 69 -> 54 us, BM_optimiser_update). Up to rounding the same.
    bc2_rsqrt_ = 1.0f / sqrt(1.0f - exp(t * log(b2_v_)));
    decay_factor_ = 1.0f - lr * wd_v_;
    one_minus_b1_ = 1.0f - b1_v_;
    one_minus_b2_ = 1.0f - b2_v_;
  }
  void update(GraphParams& p, int i, Value param, Value g, std::vector<Value>& out) override {
    const bool decay = config_.resolved_weight_decay() > 0;
    Value base = param;
    if (decay && decoupled_) base = param * decay_factor_;
    if (decay && !decoupled_) g = g + wd_v_ * param;
    Value m = state_leaf(p.graph(), m_, i), v = state_leaf(p.graph(), v_, i);
    Value m_new = assign(m, b1_v_ * m + one_minus_b1_ * g);
    Value v_new = assign(v, b2_v_ * v + one_minus_b2_ * square(g));
    out.push_back(m_new);
    out.push_back(v_new);
    Value denom = sqrt(v_new) * bc2_rsqrt_ + eps_v_;
    out.push_back(assign(param, base - step_size_ * m_new / denom));
  }

 private:
  bool decoupled_;
  int wd_ = -1, b1_ = -1, b2_ = -1, eps_ = -1, m_ = -1, v_ = -1;
  Value b1_v_, b2_v_, eps_v_, wd_v_, step_size_, bc2_rsqrt_, decay_factor_, one_minus_b1_, one_minus_b2_;
};

}  // namespace

std::unique_ptr<Optimizer> Optimizer::make(const OptimConfig& config, ParamStore& params) {
  config.validate();
  std::unique_ptr<Optimizer> opt;
  if (config.kind == "sgd") opt.reset(new Sgd(config, params));
  else if (config.kind == "adagrad") opt.reset(new Adagrad(config, params));
  else opt.reset(new Adam(config, params, config.kind == "adamw"));
  opt->write_hypers();
  return opt;
}

}  // namespace ag::models
