// Checkpoints: the trainer's state under PyTorch-friendly names plus the run's settings and
// history as metadata, saved atomically; reading checks the metadata, names, shapes and dtypes
// before anything is written into a model or trainer.
#include "tools/train/checkpoint.h"

#include <set>

#include <fmt/format.h>

#include "tools/train/tool_support.h"

namespace ag::tools {
namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// The metadata value `key` parsed as JSON, with an error naming the file.
nlohmann::json metadata_json(const io::TensorFile& file, const std::string& key, const std::string& path) {
  auto it = file.metadata.find(key);
  if (it == file.metadata.end()) throw Error(fmt::format("{}: metadata '{}' is missing", path, key));
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(fmt::format("{}: metadata '{}' is not valid JSON", path, key));
  return j;
}

// The tensor `name` of the checkpoint, checked against the shape and dtype the model expects.
const HostTensor& expect_tensor(const Checkpoint& c, const std::string& name, const Shape& shape, DType dtype,
                                const std::string& model) {
  const io::NamedTensor* t = c.file.find(name);
  if (!t) throw Error(fmt::format("{}: tensor '{}' is missing (a {} model has it)", c.path, name, model));
  if (t->tensor.shape() != shape || t->tensor.dtype() != dtype)
    throw Error(fmt::format("{}: tensor '{}' is {} {} but a {} model needs {} {}", c.path, name, to_string(t->tensor.dtype()),
                            t->tensor.shape().str(), model, to_string(dtype), shape.str()));
  return t->tensor;
}

}  // namespace

std::string checkpoint_name(const std::string& state_name) {
  // TrainerState names: "param/<p>", "optim/<slot>/<p>", "hyper/<h>", "counter/<c>".
  if (starts_with(state_name, "param/")) return state_name.substr(6);
  if (starts_with(state_name, "optim/")) {
    std::string rest = state_name.substr(6);
    size_t slash = rest.find('/');
    if (slash != std::string::npos) rest[slash] = '.';
    return "optim." + rest;
  }
  if (starts_with(state_name, "hyper/")) return "optim." + state_name.substr(6);
  if (starts_with(state_name, "counter/")) return "trainer." + state_name.substr(8);
  throw Error(fmt::format("checkpoint: trainer state tensor '{}' has no checkpoint name", state_name));
}

void save_checkpoint(const std::string& path, const RunSettings& run, models::Trainer& trainer,
                     const nlohmann::json& history, const nlohmann::json& data) {
  models::TrainerState state = trainer.save_state();
  std::vector<io::NamedTensor> tensors;
  tensors.reserve(state.tensors.size());
  for (auto& [name, tensor] : state.tensors) tensors.push_back({checkpoint_name(name), std::move(tensor)});
  io::Metadata metadata = state.metadata();
  metadata["format"] = checkpoint_format;
  metadata["run"] = run_json(run).dump();
  metadata["history"] = history.dump();
  metadata["data"] = data.dump();
  io::save_safetensors(path, tensors, metadata);
}

Checkpoint read_checkpoint(const std::string& path) {
  Checkpoint c;
  c.path = path;
  c.file = io::load_safetensors(path);
  auto format = c.file.metadata.find("format");
  if (format == c.file.metadata.end() || format->second != checkpoint_format)
    throw Error(fmt::format("{}: not an aegraph checkpoint (metadata 'format' is {}, expected '{}')", path,
                            format == c.file.metadata.end() ? "missing" : "'" + format->second + "'", checkpoint_format));
  c.run = run_from_json(metadata_json(c.file, "run", path), path);
  c.history = metadata_json(c.file, "history", path);
  if (!c.history.is_array()) throw Error(fmt::format("{}: metadata 'history' is not a JSON array", path));
  c.data = metadata_json(c.file, "data", path);
  if (!c.data.is_object()) throw Error(fmt::format("{}: metadata 'data' is not a JSON object", path));
  return c;
}

void load_parameters(const Checkpoint& c, models::Model& model) {
  ParamStore& params = model.params();
  const std::string what = describe_model(model.config());
  std::set<std::string> names;
  std::vector<const HostTensor*> values;
  for (int i = 0; i < params.count(); ++i) {
    names.insert(params.name(i));
    values.push_back(&expect_tensor(c, params.name(i), params.shape(i), params.dtype(), what));
  }
  for (const io::NamedTensor& t : c.file.tensors)
    if (!names.count(t.name) && !starts_with(t.name, "optim.") && !starts_with(t.name, "trainer."))
      throw Error(fmt::format("{}: tensor '{}' is not a parameter of a {} model (the checkpoint belongs to another model?)",
                              c.path, t.name, what));
  for (int i = 0; i < params.count(); ++i) params.write(i, *values[size_t(i)]);
}

int restore_trainer(const Checkpoint& c, models::Trainer& trainer, int epochs) {
  const std::string what = describe_model(trainer.model().config());
  // A fresh trainer's state lists every tensor a resumed one needs, with shapes and dtypes.
  models::TrainerState fresh = trainer.save_state();
  std::vector<std::pair<std::string, HostTensor>> tensors;
  std::set<std::string> expected;
  for (const auto& [name, tensor] : fresh.tensors) {
    const std::string file_name = checkpoint_name(name);
    expected.insert(file_name);
    tensors.emplace_back(name, expect_tensor(c, file_name, tensor.shape(), tensor.dtype(), what));
  }
  for (const io::NamedTensor& t : c.file.tensors)
    if (!expected.count(t.name))
      throw Error(fmt::format("{}: tensor '{}' does not belong to a {} model trained with {}", c.path, t.name, what,
                              c.run.optim.kind));
  models::TrainerState state;
  try {
    state = models::TrainerState::from(std::move(tensors), c.file.metadata);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", c.path, e.what()));
  }

  const int phases = int(trainer.model().phases().size());
  const int saved_epochs = c.run.epochs;
  if (state.phase > phases || (state.phase == phases && state.epoch != 0) || state.epoch >= saved_epochs)
    throw Error(fmt::format("{}: position phase {} epoch {} does not fit {} phase(s) of {} epochs", c.path, state.phase,
                            state.epoch, phases, saved_epochs));
  const int trained = state.phase * saved_epochs + state.epoch;
  if (int(c.history.size()) != trained)
    throw Error(fmt::format("{}: the history records {} epochs but the position says {}", c.path, c.history.size(), trained));
  if (phases > 1) {
    // The phase boundaries move with the epoch count, so only the saved count continues exactly.
    if (epochs != saved_epochs)
      throw UsageError(fmt::format("--epochs {}: a {} model trains {} phases of --epochs each; resume it with the saved "
                                   "--epochs {}",
                                   epochs, c.run.model.kind, phases, saved_epochs));
  } else if ((c.run.lr_schedule != "constant" || c.run.noise_schedule != "constant") && epochs != saved_epochs) {
    // The schedules' factors are a function of the epoch count.
    const bool lr = c.run.lr_schedule != "constant";
    throw UsageError(fmt::format("--epochs {}: the run in {} follows a {} {} schedule over {} epochs; resume it "
                                 "with the saved --epochs {}",
                                 epochs, c.path, lr ? c.run.lr_schedule : c.run.noise_schedule,
                                 lr ? "learning-rate" : "noise", saved_epochs, saved_epochs));
  } else {
    if (epochs < trained)
      throw UsageError(fmt::format("--epochs {}: the run in {} has trained {} epochs already", epochs, c.path, trained));
    state.phase = trained < epochs ? 0 : 1;
    state.epoch = trained < epochs ? trained : 0;
  }
  try {
    trainer.load_state(state);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", c.path, e.what()));
  }
  return trained;
}

}  // namespace ag::tools
