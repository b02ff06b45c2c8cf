// The settings of a training run: ae-train's flags with the tutorial's defaults, checked with
// messages that name the flag, and their JSON form, which the checkpoint and metrics.json
// carry so a run can be resumed, evaluated or reported on without its command line.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "models/model.h"
#include "models/optim.h"
#include "models/trainer.h"

namespace ag::tools {

struct RunSettings {
  // What the run is: saved in the checkpoint, and what --resume must agree with.
  models::ModelConfig model;  // resolved(): every default filled in
  models::OptimConfig optim;
  int batch = 150;
  int epochs = 5;             // per phase (sae, and a model with a classifier head, have more than one)
  std::string lr_schedule = "constant";     // constant | cosine | linear (TrainConfig::lr_schedule)
  std::string noise_schedule = "constant";  // constant | cosine | linear (TrainConfig::noise_schedule)
  uint64_t seed = 0;          // initialisation, noise and shuffling
  int64_t limit = -1;         // training images used; -1: all
  // Where and how it runs: free to change between a run and its resumption.
  std::string device = "cpu";
  int threads = 0;            // 0: all cores
  std::string data, mirror;
  std::string out;
  bool resume = false;
};

// Declares every ae-train flag on `app`. After app.parse(), fresh_run() or resumed_run().
class TrainFlags {
 public:
  explicit TrainFlags(CLI::App& app);

  bool resume() const { return raw_.resume; }
  const std::string& out() const { return raw_.out; }
  // The run the flags describe, defaults filled in, every value checked (UsageError naming the flag).
  RunSettings fresh_run() const;
  // `saved` (from `origin`, the checkpoint) continued to --epochs (default: its own). Flags that
  // define the run may be repeated but must agree with it.
  RunSettings resumed_run(const RunSettings& saved, const std::string& origin) const;

 private:
  bool given(const std::string& flag) const;
  void check_values(const RunSettings& run) const;

  CLI::App* app_;
  RunSettings raw_;  // values as parsed (defaults where a flag is absent)
  std::string model_kind_ = "ae";
  std::vector<int> sizes_;
  std::string activation_, loss_, optimiser_, noise_, lr_schedule_, noise_schedule_;
  double lr_ = 0, momentum_ = 0, noise_level_ = 0, lambda_ = 0, rho_ = 0, beta_ = 0, gaussian_noise_ = 0,
         grad_clamp_ = 0;
  bool tied_ = false;
  int classes_ = 0;
};

// The learning rate an optimiser gets when --lr is absent: Adagrad 0.01 (the tutorial's),
// Adam and AdamW 1e-3, SGD 0.1.
double default_lr(const std::string& optimiser);

// JSON of the part of RunSettings that defines the run (model, optimiser, batch, epochs, seed,
// limit), and back. run_from_json throws ag::Error naming `origin` and the bad key.
nlohmann::json run_json(const RunSettings& run);
RunSettings run_from_json(const nlohmann::json& json, const std::string& origin);
nlohmann::json model_json(const models::ModelConfig& model);
models::ModelConfig model_from_json(const nlohmann::json& json, const std::string& origin);

models::TrainConfig train_config(const RunSettings& run);

// "ae 784-128 relu, bce" and the like, for messages and titles.
std::string describe_model(const models::ModelConfig& model);
// The settings as rows for a report table ("optimiser", "adagrad lr 0.01"), in a stable order.
std::vector<std::pair<std::string, std::string>> settings_rows(const RunSettings& run);

}  // namespace ag::tools
