// The trainer: compiles a model's training step once (forward, gradients, optimiser update) and
// runs epochs over shuffled minibatches, gathering rows straight into the executor's input
// buffer; evaluates on a test set with a separately compiled plan; reports per-epoch metrics;
// saves and restores every piece of state, so a resumed run reproduces an uninterrupted one.
//
// The last partial batch (n not a multiple of the batch size) is trained by a second compiled
// plan of that size, unless drop_last; evaluation covers every example the same way.
// Shuffling is a pure function of (seed, phase, epoch) and noise of the step counter, so the
// same seed gives the same losses, and state = parameters + optimiser + counters + position.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "graph/aegraph.h"
#include "models/model.h"
#include "models/optim.h"

namespace ag::models {

// Plain arrays: n examples of dim floats in [0, 1], row-major; labels (0..classes-1) optional.
struct DataView {
  const float* images = nullptr;
  int64_t n = 0;
  int dim = 0;
  const uint8_t* labels = nullptr;
};

// How a training-time factor moves over each phase's E epochs, epoch e from 0: constant (1),
// cosine annealing without restarts ((1 + cos(pi e / E)) / 2), or linear decay (1 - e / E).
enum class Schedule { constant, cosine, linear };
using LrSchedule = Schedule;

// The factor `schedule` gives epoch `epoch` (from 0) of a phase of `epochs` epochs.
double schedule_factor(Schedule schedule, int epoch, int epochs);

struct TrainConfig {
  int epochs = 5;              // per phase
  int batch_size = 150;
  int eval_batch_size = 1000;
  bool drop_last = false;      // true: skip the last partial batch instead of a second plan
  uint64_t seed = 0;           // shuffling (the model's seed keys init and noise)
  OptimConfig optim;
  // The phase optimiser's learning rate over each phase's epochs: constant (optim.lr
  // throughout; on_epoch may still change it), or optim.lr times the cosine or linear factor of
  // epoch e of E (set before each epoch; a model's players keep optim.lr).
  LrSchedule lr_schedule = LrSchedule::constant;
  // The model's Gaussian input noise (ModelConfig::gaussian_noise, or dae/convdae's noise =
  // gaussian) over each phase's epochs: its standard deviation times the schedule's factor, so
  // a cosine or linear schedule anneals a regulariser towards clean inputs as training ends.
  // Needs a model with Gaussian input noise (the Trainer refuses one without).
  Schedule noise_schedule = Schedule::constant;
  void validate() const;
};

// The learning rate `config` gives epoch `epoch` (from 0) of a phase of config.epochs epochs.
double scheduled_lr(const TrainConfig& config, int epoch);

struct StepInfo {
  int phase = 0, epoch = 0;    // epoch counts from 0 within the phase
  int64_t batch = 0, batches = 0;
  int64_t step = 0;            // training steps taken, all phases
  double loss = 0;             // this step's objective (read only when on_step is set)
};

struct EvalReport {
  double loss = 0;   // the phase's objective, mean per example
  double bce = 0;    // mean per pixel BCE of sigmoid(logits) vs x
  double mse = 0;    // squared error per example, summed over pixels
  double error = std::numeric_limits<double>::quiet_NaN();  // classification error (with a head)
  struct Extra {
    std::string name, label;
    double value = 0;  // mean per example
  };
  std::vector<Extra> extra;  // the model's metrics(), in its order
  int64_t n = 0;
};

struct EpochReport {
  std::string phase_name;
  int phase = 0, epoch = 0;
  double train_loss = 0;     // mean of the per-step objective over the epoch's examples
  EvalReport test;           // on the test set (n = 0 when there is none)
  double samples_per_s = 0;  // training only
  double seconds = 0;        // training only
  int64_t step = 0;          // steps taken after this epoch, all phases
};

// Everything a resumed run needs, as named host tensors plus a few integers. Tensor names:
// "param/<name>" (batch norm's running statistics too), "optim/<slot>/<param name>", "hyper/<name>"
// (a player's optimiser: "hyper/<player>.<name>"), "counter/<name>".
struct TrainerState {
  std::vector<std::pair<std::string, HostTensor>> tensors;
  int phase = 0, epoch = 0;  // the next epoch to run
  int64_t step = 0;
  std::map<std::string, std::string> metadata() const;  // phase, epoch, step as strings
  static TrainerState from(std::vector<std::pair<std::string, HostTensor>> tensors,
                           const std::map<std::string, std::string>& metadata);
};

class Trainer {
 public:
  Trainer(Model& model, TrainConfig config);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Called after every step (the loss is then read back each step) and after every epoch.
  // on_epoch may change the learning rate (optimizer().set_lr) or save state.
  std::function<void(const StepInfo&)> on_step;
  std::function<void(const EpochReport&)> on_epoch;

  // Runs every remaining epoch of every phase (after load_state: from where it stopped).
  // test.n == 0 skips evaluation. Returns the reports of the epochs it ran.
  std::vector<EpochReport> fit(const DataView& train, const DataView& test = {});
  // One epoch of the current phase; advances the position.
  EpochReport run_epoch(const DataView& train, const DataView& test = {});
  bool finished() const;

  EvalReport evaluate(const DataView& data, int phase = -1);  // phase < 0: the current one
  // sigmoid(logits(x)) of the finished model, n x dim, for pictures.
  std::vector<float> reconstruct(const float* images, int64_t n);
  // For a denoising model, the corrupted copies of n images (the noise of step 0) and the
  // finished model's reconstructions from them, each n x dim; both empty for other models.
  std::pair<std::vector<float>, std::vector<float>> denoise(const float* images, int64_t n);

  TrainerState save_state();
  void load_state(const TrainerState& state);  // throws ag::Error naming a missing or mismatched tensor

  Model& model() { return model_; }
  Optimizer& optimizer() { return *optimizer_; }  // the phases' (a model's players have their own)
  std::vector<Optimizer*> optimisers();            // the phases', then one per model player
  const TrainConfig& config() const { return config_; }
  int phase() const { return phase_; }
  int epoch() const { return epoch_; }
  int64_t step();

 private:
  struct Compiled;
  // `rows` of a global batch of `global` (all of it but with several ranks: data parallel).
  Compiled& train_plan(int phase, int64_t rows, int64_t global);
  Compiled& eval_plan(int phase, int64_t batch);
  void write_noise_scale();  // the noise schedule's factor at the current position
  void fill_batch(Compiled& c, const DataView& data, const int64_t* rows, int64_t count, int64_t step);
  void shuffle(int64_t n);
  std::vector<int> state_slots();  // every optimiser's, each slot once
  // Every optimiser's scalars with their checkpoint names ("hyper/<name>"; a player's
  // "hyper/<player>.<name>").
  struct Hyper {
    std::string name;
    ParamStore* store;
    int index;
  };
  std::vector<Hyper> hypers();

  Model& model_;
  TrainConfig config_;
  std::vector<Phase> phases_;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<std::unique_ptr<Optimizer>> player_optimisers_;
  ParamStore counters_;  // "step" (training steps, keys the noise), "eval_step", "loss_sum"
  int step_ = -1, eval_step_ = -1, loss_sum_ = -1;
  // The noise schedule's factor at the current epoch, read by the plans only when the schedule
  // is not constant. Not part of the saved state: a function of the position.
  ParamStore noise_scale_;
  std::vector<std::unique_ptr<Compiled>> plans_;
  std::vector<int64_t> order_;  // the epoch's permutation of the training rows
  const float* huge_pages_ = nullptr;  // the training images last given to prefer_huge_pages
  int phase_ = 0, epoch_ = 0;
};

}  // namespace ag::models
