// The trainer: one compiled step per (phase, batch size) and one compiled evaluation per
// (phase, batch size), built lazily and kept; epochs over shuffled rows gathered straight into
// the executors' input buffers; the epoch's loss summed on the device (no read per step unless
// on_step asks); checkpoints of every piece of state.
#include "models/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "backends/communicator.h"
#include "models/data.h"
#include "models/train_step.h"

namespace ag::models {

struct Trainer::Compiled {
  bool train = false;
  int phase = 0;
  int64_t batch = 0;    // rows this process runs
  int64_t rows = 0, global = 0;  // training, data parallel: this rank's rows of a global batch (batch = max(rows, 1))
  std::unique_ptr<Graph> graph = std::make_unique<Graph>();
  Value x, labels, corrupted;
  Value loss, bce, mse, class_logits, images;  // bce .. images: evaluation only
  std::vector<Metric> metrics;                  // evaluation only: the model's extra figures
  float* x_host = nullptr;
  float* labels_host = nullptr;
  float* corrupted_host = nullptr;
  std::unique_ptr<Executor> exec;

  // The batch's inputs: the images, the labels when the phase uses them, the host-corrupted
  // copy when the model corrupts on the host; `step` counts the random ops' draws.
  Batch inputs(const Model& model, bool uses_labels, Value step) {
    Batch b;
    b.x = x = input(*graph, Shape{batch, model.input_dim()}, "x");
    b.step = step;
    if (uses_labels) b.labels = labels = input(*graph, Shape{batch, model.classes()}, "labels");
    if (model.corrupts_on_host()) b.corrupted = corrupted = input(*graph, b.x.shape(), "corrupted");
    return b;
  }
  // Compiles the outputs and finds the host buffers the batch is gathered into.
  void bind(const std::vector<Value>& outputs, Device device) {
    exec = std::make_unique<Executor>(compile(outputs), device);
    x_host = exec->input(x).ptr<float>();
    if (labels.valid()) labels_host = exec->input(labels).ptr<float>();
    if (corrupted.valid()) corrupted_host = exec->input(corrupted).ptr<float>();
  }
};

void TrainConfig::validate() const {
  if (epochs < 0) throw Error(fmt::format("trainer: epochs must be >= 0, not {}", epochs));
  if (batch_size <= 0) throw Error(fmt::format("trainer: batch size must be positive, not {}", batch_size));
  if (eval_batch_size <= 0) throw Error(fmt::format("trainer: eval batch size must be positive, not {}", eval_batch_size));
  optim.validate();
}

double schedule_factor(Schedule schedule, int epoch, int epochs) {
  if (schedule == Schedule::constant || epochs <= 0) return 1.0;
  const double at = double(epoch) / double(epochs);
  if (schedule == Schedule::linear) return 1.0 - at;
  return 0.5 * (1.0 + std::cos(std::acos(-1.0) * at));
}

double scheduled_lr(const TrainConfig& config, int epoch) {
  return config.optim.lr * schedule_factor(config.lr_schedule, epoch, config.epochs);
}

std::map<std::string, std::string> TrainerState::metadata() const {
  return {{"phase", std::to_string(phase)}, {"epoch", std::to_string(epoch)}, {"step", std::to_string(step)}};
}

TrainerState TrainerState::from(std::vector<std::pair<std::string, HostTensor>> tensors,
                                 const std::map<std::string, std::string>& metadata) {
  TrainerState s;
  s.tensors = std::move(tensors);
  auto number = [&](const char* key) -> int64_t {
    auto it = metadata.find(key);
    if (it == metadata.end()) throw Error(fmt::format("trainer state: metadata '{}' is missing", key));
    try {
      size_t used = 0;
      int64_t v = std::stoll(it->second, &used);
      if (used != it->second.size() || v < 0) throw Error("");
      return v;
    } catch (const std::exception&) {
      throw Error(fmt::format("trainer state: metadata '{}' = '{}' is not a count", key, it->second));
    }
  };
  s.phase = int(number("phase"));
  s.epoch = int(number("epoch"));
  s.step = number("step");
  return s;
}

Trainer::Trainer(Model& model, TrainConfig config)
    : model_(model),
      config_(std::move(config)),
      counters_(model.device(), model.dtype(), 0),
      noise_scale_(model.device(), model.dtype(), 0) {
  config_.validate();
  if (model.dtype() != DType::f32) throw Error("trainer: batches are f32; build the model with DType::f32");
  phases_ = model_.phases();
  optimizer_ = Optimizer::make(config_.optim, model_.params());
  player_optimisers_ = make_player_optimisers(model_, config_.optim);
  step_ = counters_.add("step", Shape{}, Init::Zeros());
  eval_step_ = counters_.add("eval_step", Shape{}, Init::Zeros());
  loss_sum_ = counters_.add("loss_sum", Shape{}, Init::Zeros());
  noise_scale_.add("noise_scale", Shape{}, Init::Constant(1.0));
  if (config_.noise_schedule != Schedule::constant && !model_.config().has_gaussian_noise())
    throw Error(fmt::format("trainer: a noise schedule scales Gaussian input noise, but model '{}' has none "
                            "(set gaussian_noise, or noise = gaussian for dae and convdae)",
                            model_.config().kind));
}

Trainer::~Trainer() = default;

bool Trainer::finished() const { return phase_ >= int(phases_.size()); }

int64_t Trainer::step() { return int64_t(counters_.read(step_).at(0)); }

namespace {

void write_scalar(ParamStore& store, int index, double value) {
  HostTensor v(Shape{}, store.dtype());
  v.set(0, value);
  store.write(index, v);
}

void check_data(const DataView& d, int dim, const char* what) {
  if (d.n <= 0 || d.images == nullptr) throw Error(fmt::format("trainer: the {} set is empty", what));
  if (d.dim != dim)
    throw Error(fmt::format("trainer: {} examples have {} values but the model takes {}", what, d.dim, dim));
}

}  // namespace

Trainer::Compiled& Trainer::train_plan(int phase, int64_t rows, int64_t global) {
  for (auto& c : plans_)
    if (c->train && c->phase == phase && c->rows == rows && c->global == global) return *c;
  auto c = std::make_unique<Compiled>();
  c->train = true;
  c->phase = phase;
  c->batch = std::max<int64_t>(rows, 1);
  c->rows = rows;
  c->global = global;
  Graph& g = *c->graph;
  GraphParams p(g, model_.params()), counters(g, counters_);
  const Phase& ph = phases_[size_t(phase)];
  Batch b = c->inputs(model_, ph.uses_labels, counters[step_]);
  if (config_.noise_schedule != Schedule::constant) b.noise_scale = GraphParams(g, noise_scale_)[0];
  StepGraph s = build_step(model_, p, b, ph, phase, optimisers(), double(rows) / double(global));
  c->loss = s.loss;  // the global batch's, on every rank
  std::vector<Value> outputs = std::move(s.outputs);
  Value loss_sum = counters[loss_sum_];
  outputs.push_back(assign(loss_sum, loss_sum + c->loss * float(global)));
  outputs.push_back(assign(b.step, b.step + 1.0f));  // last: the noise above read the old count
  c->bind(outputs, model_.device());
  plans_.push_back(std::move(c));
  return *plans_.back();
}

Trainer::Compiled& Trainer::eval_plan(int phase, int64_t batch) {
  for (auto& c : plans_)
    if (!c->train && c->phase == phase && c->batch == batch) return *c;
  auto c = std::make_unique<Compiled>();
  c->phase = phase;
  c->batch = batch;
  Graph& g = *c->graph;
  GraphParams p(g, model_.params()), counters(g, counters_);
  // Labels feed only a phase's objective; the classification error is counted on the host.
  Batch b = c->inputs(model_, phases_[size_t(phase)].uses_labels, counters[eval_step_]);
  if (config_.noise_schedule != Schedule::constant) b.noise_scale = GraphParams(g, noise_scale_)[0];
  b.mode = Mode::eval;
  c->loss = model_.loss(p, b, phase);
  c->images = sigmoid(model_.logits(p, b.x, phase));
  c->bce = bce(c->images, b.x);
  c->mse = mse(c->images, b.x) * float(model_.input_dim());  // summed over pixels, mean over examples
  c->class_logits = model_.classify(p, b.x);
  c->metrics = model_.metrics(p, b.x);
  std::vector<Value> outputs = {c->loss, c->bce, c->mse, c->images};
  for (const Metric& m : c->metrics) outputs.push_back(m.value);
  if (c->class_logits.valid()) outputs.push_back(c->class_logits);
  outputs.push_back(assign(b.step, b.step + 1.0f));
  c->bind(outputs, model_.device());
  plans_.push_back(std::move(c));
  return *plans_.back();
}

void Trainer::fill_batch(Compiled& c, const DataView& data, const int64_t* rows, int64_t count, int64_t step) {
  (void)c.exec->input(c.x);  // waits until the previous run has uploaded these buffers (CUDA)
  gather_rows(c.x_host, data.images, data.dim, rows, count);
  if (c.labels_host) {
    if (data.labels) gather_one_hot(c.labels_host, data.labels, model_.classes(), rows, count);
    else std::fill(c.labels_host, c.labels_host + count * model_.classes(), 0.0f);
  }
  if (c.corrupted_host) model_.corrupt_on_host(c.x_host, c.corrupted_host, count, data.dim, step);
}

void Trainer::shuffle(int64_t n) {
  order_.resize(size_t(n));
  shuffled_order(order_.data(), n, config_.seed, (uint64_t(phase_) << 32) | uint64_t(epoch_));
}

EpochReport Trainer::run_epoch(const DataView& train, const DataView& test) {
  if (finished()) throw Error("trainer: every epoch of every phase has run already");
  check_data(train, model_.input_dim(), "training");
  if (train.images != huge_pages_) {  // the batches' rows come from all over it
    prefer_huge_pages(train.images, size_t(train.n) * size_t(train.dim) * sizeof(float));
    huge_pages_ = train.images;
  }
  const Phase& ph = phases_[size_t(phase_)];
  if (ph.uses_labels && !train.labels) throw Error(fmt::format("trainer: phase '{}' needs labels", ph.name));
  if (epoch_ == 0)  // each phase starts with fresh optimisers
    for (Optimizer* o : optimisers()) o->reset();
  if (config_.lr_schedule != LrSchedule::constant) optimizer_->set_lr(scheduled_lr(config_, epoch_));
  write_noise_scale();
  write_scalar(counters_, loss_sum_, 0);
  int64_t step = this->step();
  shuffle(train.n);

  const int64_t full = train.n / config_.batch_size, rest = train.n % config_.batch_size;
  const int64_t batches = full + (rest > 0 && !config_.drop_last ? 1 : 0);
  const auto start = std::chrono::steady_clock::now();
  int64_t seen = 0;
  // Data parallel: rank r of P runs rows [size r / P, size (r + 1) / P) of each global batch (the
  // same shuffle everywhere). A rank left without a row (a last batch smaller than P) still
  // joins the step's collectives, with one row at share 0.
  const int rank = communicator().rank(), ranks = communicator().size();
  for (int64_t k = 0; k < batches; ++k) {
    const int64_t size = k < full ? config_.batch_size : rest;
    const int64_t lo = size * rank / ranks, mine = size * (rank + 1) / ranks - lo;
    Compiled& c = train_plan(phase_, mine, size);
    // (Executor::input waits until the previous run's upload has read the host buffer.)
    fill_batch(c, train, order_.data() + k * config_.batch_size + std::min(lo, size - 1), c.batch, step);
    c.exec->run();
    ++step;
    seen += size;
    if (on_step) on_step(StepInfo{phase_, epoch_, k, batches, step, c.exec->read_scalar(c.loss)});
  }
  EpochReport r;
  r.phase = phase_;
  r.phase_name = ph.name;
  r.epoch = epoch_;
  r.train_loss = seen > 0 ? counters_.read(loss_sum_).at(0) / double(seen) : 0.0;  // synchronises
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.samples_per_s = r.seconds > 0 ? double(seen) / r.seconds : 0.0;
  r.step = step;
  if (test.n > 0) r.test = evaluate(test, phase_);
  if (++epoch_ >= config_.epochs) {
    ++phase_;
    epoch_ = 0;
  }
  if (on_epoch) on_epoch(r);
  return r;
}

std::vector<EpochReport> Trainer::fit(const DataView& train, const DataView& test) {
  std::vector<EpochReport> reports;
  if (config_.epochs == 0) return reports;
  while (!finished()) reports.push_back(run_epoch(train, test));
  return reports;
}

EvalReport Trainer::evaluate(const DataView& data, int phase) {
  check_data(data, model_.input_dim(), "evaluation");
  if (phase < 0) phase = std::min(phase_, int(phases_.size()) - 1);
  if (phase >= int(phases_.size())) throw Error(fmt::format("trainer: there is no phase {}", phase));
  if (phases_[size_t(phase)].uses_labels && !data.labels)
    throw Error(fmt::format("trainer: evaluating phase '{}' needs labels", phases_[size_t(phase)].name));
  write_scalar(counters_, eval_step_, 0);  // the same noise at every evaluation
  EvalReport r;
  int64_t wrong = 0;
  std::vector<int64_t> rows(size_t(std::min<int64_t>(data.n, config_.eval_batch_size)));
  for (int64_t at = 0, k = 0; at < data.n; at += config_.eval_batch_size, ++k) {
    const int64_t size = std::min<int64_t>(config_.eval_batch_size, data.n - at);
    for (int64_t i = 0; i < size; ++i) rows[size_t(i)] = at + i;
    Compiled& c = eval_plan(phase, size);
    fill_batch(c, data, rows.data(), size, k);
    c.exec->run();
    r.loss += c.exec->read_scalar(c.loss) * double(size);
    r.bce += c.exec->read_scalar(c.bce) * double(size);
    r.mse += c.exec->read_scalar(c.mse) * double(size);
    r.extra.resize(c.metrics.size());
    for (size_t m = 0; m < c.metrics.size(); ++m) {
      r.extra[m].name = c.metrics[m].name;
      r.extra[m].label = c.metrics[m].label;
      r.extra[m].value += c.exec->read_scalar(c.metrics[m].value) * double(size);
    }
    if (c.class_logits.valid() && data.labels) {
      HostTensor z = c.exec->read(c.class_logits);
      const int classes = model_.classes();
      for (int64_t i = 0; i < size; ++i) {
        int best = 0;
        for (int j = 1; j < classes; ++j)
          if (z.at(i * classes + j) > z.at(i * classes + best)) best = j;
        wrong += best != int(data.labels[at + i]);
      }
    }
  }
  r.n = data.n;
  r.loss /= double(data.n);
  r.bce /= double(data.n);
  r.mse /= double(data.n);
  for (EvalReport::Extra& e : r.extra) e.value /= double(data.n);
  if (model_.classes() > 0 && data.labels) r.error = double(wrong) / double(data.n);
  return r;
}

std::vector<float> Trainer::reconstruct(const float* images, int64_t n) {
  DataView d{images, n, model_.input_dim(), nullptr};
  check_data(d, model_.input_dim(), "reconstruction");
  const int phase = int(phases_.size()) - 1;
  const int64_t dim = model_.input_dim();
  std::vector<float> out(size_t(n * dim));
  std::vector<int64_t> rows(size_t(std::min<int64_t>(n, config_.eval_batch_size)));
  for (int64_t at = 0; at < n; at += config_.eval_batch_size) {
    const int64_t size = std::min<int64_t>(config_.eval_batch_size, n - at);
    for (int64_t i = 0; i < size; ++i) rows[size_t(i)] = at + i;
    Compiled& c = eval_plan(phase, size);
    fill_batch(c, d, rows.data(), size, 0);
    c.exec->run();
    HostTensor h = c.exec->read(c.images);
    std::copy(h.ptr<float>(), h.ptr<float>() + size * dim, out.begin() + at * dim);
  }
  return out;
}

std::pair<std::vector<float>, std::vector<float>> Trainer::denoise(const float* images, int64_t n) {
  DataView d{images, n, model_.input_dim(), nullptr};
  check_data(d, model_.input_dim(), "denoising");
  Graph g;
  GraphParams p(g, model_.params());
  Batch b;
  b.mode = Mode::eval;
  b.x = input(g, Shape{n, model_.input_dim()}, "x");
  b.step = constant(g, 0.0);
  if (model_.corrupts_on_host()) b.corrupted = input(g, b.x.shape(), "corrupted");
  Value noisy = model_.corrupted(p, b);
  if (!noisy.valid() || n == 0) return {};
  Value out = sigmoid(model_.logits(p, noisy));
  Executor ex(compile({noisy, out}), model_.device());
  // The clean images feed the graph unless the corruption is done on the host (then only its result does).
  if (ex.plan().storage[size_t(b.x.id)] == Storage::input)
    std::copy(images, images + n * model_.input_dim(), ex.input(b.x).ptr<float>());
  if (b.corrupted.valid()) model_.corrupt_on_host(images, ex.input(b.corrupted).ptr<float>(), n, model_.input_dim(), 0);
  ex.run();
  HostTensor a = ex.read(noisy), r = ex.read(out);
  return {std::vector<float>(a.ptr<float>(), a.ptr<float>() + a.numel()),
          std::vector<float>(r.ptr<float>(), r.ptr<float>() + r.numel())};
}

std::vector<Optimizer*> Trainer::optimisers() {
  std::vector<Optimizer*> all = {optimizer_.get()};
  for (auto& o : player_optimisers_) all.push_back(o.get());
  return all;
}

std::vector<int> Trainer::state_slots() {
  std::vector<int> slots;  // optimisers of one kind share their slots (Optimizer::add_slot)
  for (Optimizer* o : optimisers())
    for (int s : o->state_slots())
      if (std::find(slots.begin(), slots.end(), s) == slots.end()) slots.push_back(s);
  return slots;
}

std::vector<Trainer::Hyper> Trainer::hypers() {
  std::vector<Hyper> all;
  const std::vector<Player> players = model_.players();
  for (size_t k = 0; k <= players.size(); ++k) {
    ParamStore& h = optimisers()[k]->hyper();
    const std::string prefix = k == 0 ? "hyper/" : "hyper/" + players[k - 1].name + ".";
    for (int i = 0; i < h.count(); ++i) all.push_back(Hyper{prefix + h.name(i), &h, i});
  }
  return all;
}

TrainerState Trainer::save_state() {
  TrainerState s;
  ParamStore& params = model_.params();
  for (int i = 0; i < params.count(); ++i) s.tensors.emplace_back("param/" + params.name(i), params.read(i));
  for (int slot : state_slots())
    for (int i = 0; i < params.count(); ++i)
      s.tensors.emplace_back(fmt::format("optim/{}/{}", params.state_name(slot), params.name(i)), params.read_state(slot, i));
  for (const Hyper& h : hypers()) s.tensors.emplace_back(h.name, h.store->read(h.index));
  for (int i = 0; i < counters_.count(); ++i) s.tensors.emplace_back("counter/" + counters_.name(i), counters_.read(i));
  s.phase = phase_;
  s.epoch = epoch_;
  s.step = int64_t(counters_.read(step_).at(0));
  return s;
}

void Trainer::load_state(const TrainerState& s) {
  auto find = [&](const std::string& name) -> const HostTensor& {
    for (const auto& [n, t] : s.tensors)
      if (n == name) return t;
    throw Error(fmt::format("trainer state: tensor '{}' is missing", name));
  };
  if (s.phase < 0 || s.phase > int(phases_.size()) || s.epoch < 0 || s.epoch >= std::max(config_.epochs, 1))
    throw Error(fmt::format("trainer state: position phase {} epoch {} does not fit {} phases of {} epochs", s.phase,
                            s.epoch, phases_.size(), config_.epochs));
  // Check everything before writing anything, so a bad state leaves the trainer as it was.
  ParamStore& params = model_.params();
  auto check = [&](const std::string& name, const Shape& shape) {
    const HostTensor& t = find(name);
    if (t.shape() != shape || t.dtype() != params.dtype())
      throw Error(fmt::format("trainer state: '{}' is {} {} but the model needs {} {}", name, to_string(t.dtype()),
                              t.shape().str(), to_string(params.dtype()), shape.str()));
  };
  for (int i = 0; i < params.count(); ++i) check("param/" + params.name(i), params.shape(i));
  for (int slot : state_slots())
    for (int i = 0; i < params.count(); ++i)
      check(fmt::format("optim/{}/{}", params.state_name(slot), params.name(i)), params.shape(i));
  for (const Hyper& h : hypers()) check(h.name, h.store->shape(h.index));
  for (int i = 0; i < counters_.count(); ++i) check("counter/" + counters_.name(i), counters_.shape(i));

  for (int i = 0; i < params.count(); ++i) params.write(i, find("param/" + params.name(i)));
  for (int slot : state_slots())
    for (int i = 0; i < params.count(); ++i)
      params.write_state(slot, i, find(fmt::format("optim/{}/{}", params.state_name(slot), params.name(i))));
  for (const Hyper& h : hypers()) h.store->write(h.index, find(h.name));
  for (int i = 0; i < counters_.count(); ++i) counters_.write(i, find("counter/" + counters_.name(i)));
  phase_ = s.phase;
  epoch_ = s.epoch;
  write_noise_scale();
}

void Trainer::write_noise_scale() {
  if (config_.noise_schedule != Schedule::constant)
    write_scalar(noise_scale_, 0, schedule_factor(config_.noise_schedule, epoch_, config_.epochs));
}

}  // namespace ag::models
