// checkpoint.safetensors: one file holding everything a run needs to be evaluated or resumed,
// written atomically after every epoch so a crash leaves the previous good checkpoint.
//
// Tensor names (standard safetensors, so `safetensors.torch.load_file` reads it):
//   <param>                    the model's parameters under their own names ("encoder.weight")
//   optim.<slot>.<param>       optimiser state ("optim.adagrad.sum.encoder.weight")
//   optim.<hyper>              optimiser scalars ("optim.lr", "optim.t": updates applied)
//   trainer.<counter>          the trainer's counters ("trainer.step")
// __metadata__ (strings): "format" = "aegraph.checkpoint/1"; "run" = the run's settings as JSON
// (run_json); "history" = a JSON array, one record per epoch trained; "data" = JSON describing
// the data set; "phase", "epoch", "step" = the trainer's position (the next epoch to run).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "models/model.h"
#include "models/trainer.h"
#include "tools/io/safetensors.h"
#include "tools/train/run_settings.h"

namespace ag::tools {

inline constexpr const char* checkpoint_format = "aegraph.checkpoint/1";

// A checkpoint as read from disk, its metadata parsed and checked.
struct Checkpoint {
  std::string path;
  io::TensorFile file;
  RunSettings run;        // the run-defining settings (device, out, ... left at their defaults)
  nlohmann::json history;  // array of epoch records
  nlohmann::json data;     // object
};

// The checkpoint name of a TrainerState tensor ("param/encoder.weight" -> "encoder.weight").
std::string checkpoint_name(const std::string& state_name);

void save_checkpoint(const std::string& path, const RunSettings& run, models::Trainer& trainer,
                     const nlohmann::json& history, const nlohmann::json& data);

// Reads and checks `path`: a valid safetensors file with aegraph metadata and sound settings.
// Throws ag::Error naming the file and what is wrong.
Checkpoint read_checkpoint(const std::string& path);

// Writes the checkpoint's parameters into `model` (built from checkpoint.run.model). Every
// parameter must be present with its shape and dtype, and every tensor that is not optimiser
// or trainer state must be a parameter of the model. Checks everything before writing anything.
void load_parameters(const Checkpoint& checkpoint, models::Model& model);

// Restores `trainer` (built from checkpoint.run with `epochs` per phase) to where the checkpoint
// stopped. Returns the number of epochs already trained (over all phases). Throws UsageError
// when `epochs` cannot continue the saved run (fewer than trained; or a multi-phase model with
// another count per phase), ag::Error naming the file when the state does not fit.
int restore_trainer(const Checkpoint& checkpoint, models::Trainer& trainer, int epochs);

}  // namespace ag::tools
