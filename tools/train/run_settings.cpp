// ae-train's flags: declared once, defaults resolved per model (the VAE trains with Adam, the
// others with the tutorial's Adagrad), ranges checked with messages naming the flag, and the
// JSON round trip of a run's settings that checkpoints and metrics.json rely on.
#include "tools/train/run_settings.h"

#include <cmath>
#include <initializer_list>
#include <tuple>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "tools/train/tool_support.h"

namespace ag::tools {
namespace {

constexpr int max_batch = 1 << 16, max_epochs = 100000, max_layer = 1 << 16, max_threads = 1024;

bool is_one_of(const std::string& s, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (s == n) return true;
  return false;
}

const std::initializer_list<const char*> schedule_names = {"constant", "cosine", "linear"};

models::Schedule schedule_of(const std::string& name) {
  if (name == "cosine") return models::Schedule::cosine;
  if (name == "linear") return models::Schedule::linear;
  return models::Schedule::constant;
}

std::string join_sizes(const std::vector<int>& sizes, const char* sep) { return fmt::format("{}", fmt::join(sizes, sep)); }

// A required field of a JSON object, with an error naming the file and the key path.
template <class T>
T field(const nlohmann::json& j, const char* key, const std::string& origin, const char* where) {
  if (!j.is_object() || !j.contains(key)) throw Error(fmt::format("{}: settings field '{}{}' is missing", origin, where, key));
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(fmt::format("{}: settings field '{}{}' has the wrong type ({})", origin, where, key, j.at(key).dump()));
  }
}

// A field added after checkpoints were first written: `fallback` where an older file lacks it.
template <class T>
T optional_field(const nlohmann::json& j, const char* key, T fallback, const std::string& origin, const char* where) {
  return j.is_object() && j.contains(key) ? field<T>(j, key, origin, where) : fallback;
}

}  // namespace

double default_lr(const std::string& optimiser) {
  if (optimiser == "adam" || optimiser == "adamw") return 1e-3;
  if (optimiser == "sgd") return 0.1;
  return 0.01;
}

TrainFlags::TrainFlags(CLI::App& app) : app_(&app) {
  app.add_option("--model", model_kind_, "ae | dae | cae | sparse | sae (stacked) | deep | vae | conv | upconv | convdae | catvae | aae | wta | seq2seq")
      ->check(CLI::IsMember(models::model_kinds()));
  app.add_option("--sizes", sizes_, "layer sizes, input first, code last (default ae 784,128; sae 784,128,64; "
                                    "deep 784,1000,500,250,30; vae 784,400,20)")
      ->delimiter(',');
  app.add_option("--activation", activation_, "code activation: relu | sigmoid | tanh | softplus | linear "
                                              "(default relu; cae and sparse sigmoid)");
  app.add_option("--loss", loss_, "reconstruction loss: bce | mse (default bce)");
  app.add_option("--optimiser,--optimizer", optimiser_, "sgd | adagrad | adam | adamw (default adagrad; vae, conv, upconv, convdae, catvae, aae adam)");
  app.add_option("--lr", lr_, "learning rate (default adagrad 0.01, adam/adamw 0.001, sgd 0.1)");
  app.add_option("--lr-schedule", lr_schedule_, "constant | cosine | linear: epoch e of E (per phase) at lr (1 + cos(pi e / E)) / 2 "
                                                "or lr (1 - e / E) (default constant)");
  app.add_option("--noise-schedule", noise_schedule_, "constant | cosine | linear: the Gaussian input noise's std (--gaussian-noise, "
                                                      "or --noise gaussian) times the same factors as --lr-schedule (default constant)");
  app.add_option("--momentum", momentum_, "sgd momentum (default 0)");
  app.add_option("--batch", raw_.batch, "minibatch size")->capture_default_str();
  app.add_option("--epochs", raw_.epochs, "epochs (per phase for sae); with --resume, the total to reach")
      ->capture_default_str();
  app.add_option("--noise", noise_, "dae, convdae corruption: mask | salt_pepper | gaussian | affine (default mask; convdae gaussian)");
  app.add_option("--noise-level", noise_level_, "dae, convdae: fraction corrupted (mask, salt_pepper) or std (gaussian); default 0.3 (convdae gaussian 0.5)");
  app.add_option("--gaussian-noise", gaussian_noise_, "add N(0, S^2) noise to the input in training, target the clean "
                                                      "image (every model but dae and convdae; default 0: off)");
  app.add_option("--grad-clamp", grad_clamp_, "clamp each gradient element to [-C, C] before the update "
                                              "(default 0: off; seq2seq 10)");
  app.add_option("--lambda", lambda_, "cae: weight of the Jacobian penalty (default 0.1)");
  app.add_option("--rho", rho_, "sparse: target mean activation (default 0.05)");
  app.add_option("--beta", beta_, "sparse: weight of the KL sparsity penalty (default 3)");
  app.add_flag("--tied", tied_, "decoder weights are the encoder's, transposed (ae, dae, cae, sparse, deep)");
  app.add_option("--classes", classes_, "ae, dae, cae, sparse, sae, deep: add a softmax head over this many classes, fine-tuned "
                                        "with the encoder on the labels after the unsupervised training");
  app.add_option("--device", raw_.device, "cpu | cuda")->capture_default_str();
  app.add_option("--threads", raw_.threads, "CPU threads (0: all cores)")->capture_default_str();
  app.add_option("--seed", raw_.seed, "seed of initialisation, noise and shuffling")->capture_default_str();
  app.add_option("--data", raw_.data, "folder holding the four MNIST files (else $AEGRAPH_DATA, else ./data/mnist, "
                                      "downloaded when missing)");
  app.add_option("--mirror", raw_.mirror, "base URL to download MNIST from instead of the public mirrors");
  app.add_option("--out", raw_.out, "folder for the run's files (default runs/<model>)");
  app.add_flag("--resume", raw_.resume, "continue the run saved in --out up to --epochs");
  app.add_option("--limit", raw_.limit, "train on the first N training images only");
}

bool TrainFlags::given(const std::string& flag) const { return app_->get_option(flag)->count() > 0; }

void TrainFlags::check_values(const RunSettings& run) const {
  auto fail = [](const std::string& message) { throw UsageError(message); };
  if (run.batch < 1 || run.batch > max_batch) fail(fmt::format("--batch must be between 1 and {}, not {}", max_batch, run.batch));
  if (run.epochs < 1 || run.epochs > max_epochs)
    fail(fmt::format("--epochs must be between 1 and {}, not {}", max_epochs, run.epochs));
  if (!(run.optim.lr > 0) || !std::isfinite(run.optim.lr))
    fail(fmt::format("--lr must be a positive finite number, not {}", run.optim.lr));
  if (!(run.optim.momentum >= 0 && run.optim.momentum < 1))
    fail(fmt::format("--momentum must be in [0, 1), not {}", run.optim.momentum));
  if (run.threads < 0 || run.threads > max_threads)
    fail(fmt::format("--threads must be between 0 (all cores) and {}, not {}", max_threads, run.threads));
  if (given("--limit") && run.limit < 1) fail(fmt::format("--limit must be at least 1, not {}", run.limit));
  if (!is_one_of(run.device, {"cpu", "cuda"})) fail(fmt::format("--device {}: expected cpu or cuda", run.device));
}

RunSettings TrainFlags::fresh_run() const {
  RunSettings run = raw_;
  auto fail = [](const std::string& message) { throw UsageError(message); };
  auto only_for = [&](const char* flag, std::initializer_list<const char*> kinds, const char* names) {
    if (given(flag) && !is_one_of(model_kind_, kinds))
      fail(fmt::format("{} applies to --model {} only, not {}", flag, names, model_kind_));
  };
  only_for("--noise", {"dae", "convdae"}, "dae and convdae");
  only_for("--noise-level", {"dae", "convdae"}, "dae and convdae");
  if (given("--gaussian-noise") && models::is_denoising_kind(model_kind_))
    fail(fmt::format("--gaussian-noise is for the other models; --model {} takes --noise gaussian --noise-level S",
                     model_kind_));
  only_for("--lambda", {"cae"}, "cae");
  only_for("--rho", {"sparse"}, "sparse");
  only_for("--beta", {"sparse"}, "sparse");
  only_for("--classes", {"ae", "dae", "cae", "sparse", "sae", "deep"}, "ae, dae, cae, sparse, sae and deep");
  only_for("--tied", {"ae", "dae", "cae", "sparse", "deep"}, "ae, dae, cae, sparse and deep");

  models::ModelConfig& m = run.model;
  m.kind = model_kind_;
  m.seed = raw_.seed;
  if (given("--sizes")) {
    m.sizes = sizes_;
    for (int s : sizes_)
      if (s < 1 || s > max_layer) fail(fmt::format("--sizes {}: each size must be between 1 and {}", join_sizes(sizes_, ","), max_layer));
    const bool shallow = is_one_of(m.kind, {"ae", "dae", "cae", "sparse", "wta", "seq2seq"});
    if (shallow && sizes_.size() != 2)
      fail(fmt::format("--sizes {}: --model {} takes two sizes, input and code (e.g. 784,128)", join_sizes(sizes_, ","), m.kind));
    if (m.kind == "vae" && sizes_.size() < 3)
      fail(fmt::format("--sizes {}: --model vae takes input, hidden..., latent (e.g. 784,400,20)", join_sizes(sizes_, ",")));
    if (sizes_.size() < 2) fail(fmt::format("--sizes {}: give at least the input and the code size", join_sizes(sizes_, ",")));
    if (models::is_conv_kind(m.kind))
      fail(fmt::format("--sizes {}: --model {} has a fixed architecture for 28x28 images (leave --sizes out)",
                       join_sizes(sizes_, ","), m.kind));
  }
  if (given("--activation")) {
    if (!is_one_of(activation_, {"relu", "sigmoid", "tanh", "softplus", "linear"}))
      fail(fmt::format("--activation {}: expected relu, sigmoid, tanh, softplus or linear", activation_));
    m.activation = activation_;
  }
  if (given("--loss")) {
    if (!is_one_of(loss_, {"bce", "mse"})) fail(fmt::format("--loss {}: expected bce or mse", loss_));
    if (m.kind == "vae" && loss_ != "bce") fail("--loss mse: the vae's decoder is Bernoulli, its loss is bce");
    m.loss = loss_;
  }
  if (given("--noise")) {
    if (!is_one_of(noise_, {"mask", "salt_pepper", "gaussian", "affine"}))
      fail(fmt::format("--noise {}: expected mask, salt_pepper, gaussian or affine", noise_));
    m.noise = noise_;
  }
  m.tied = tied_;
  if (given("--classes")) {
    if (classes_ < 1 || classes_ > 256) fail(fmt::format("--classes must be between 1 and 256, not {}", classes_));
    m.classes = classes_;
  }
  m = m.resolved();
  if (given("--noise-level")) {
    bool probability = m.noise == "mask" || m.noise == "salt_pepper";
    if (!std::isfinite(noise_level_) || noise_level_ < 0 || (probability && noise_level_ > 1))
      fail(fmt::format("--noise-level {} must be {} for --noise {}", noise_level_, probability ? "in [0, 1]" : ">= 0", m.noise));
    m.noise_level = noise_level_;
  }
  if (given("--gaussian-noise")) {
    if (!std::isfinite(gaussian_noise_) || gaussian_noise_ < 0)
      fail(fmt::format("--gaussian-noise must be a finite number >= 0, not {}", gaussian_noise_));
    m.gaussian_noise = gaussian_noise_;
  }
  if (given("--lambda")) {
    if (!std::isfinite(lambda_) || lambda_ < 0) fail(fmt::format("--lambda must be a finite number >= 0, not {}", lambda_));
    m.lambda = lambda_;
  }
  if (given("--rho")) {
    if (!(rho_ > 0 && rho_ < 1)) fail(fmt::format("--rho must be in (0, 1), not {}", rho_));
    m.rho = rho_;
  }
  if (given("--beta")) {
    if (!std::isfinite(beta_) || beta_ < 0) fail(fmt::format("--beta must be a finite number >= 0, not {}", beta_));
    m.beta = beta_;
  }

  if (m.kind == "sparse" && m.beta > 0 && m.activation != "sigmoid")
    fail(fmt::format("--activation {}: the sparse model's KL penalty needs codes in (0, 1); use sigmoid (or --beta 0)",
                     m.activation));

  run.optim = models::OptimConfig{};
  run.optim.kind = given("--optimiser") ? optimiser_ : models::default_optimiser(m.kind);
  if (!is_one_of(run.optim.kind, {"sgd", "adagrad", "adam", "adamw"}))
    fail(fmt::format("--optimiser {}: expected sgd, adagrad, adam or adamw", run.optim.kind));
  run.optim.lr = given("--lr") ? lr_ : default_lr(run.optim.kind);
  if (given("--lr-schedule")) {
    if (!is_one_of(lr_schedule_, schedule_names))
      fail(fmt::format("--lr-schedule {}: expected constant, cosine or linear", lr_schedule_));
    run.lr_schedule = lr_schedule_;
  }
  if (given("--noise-schedule")) {
    if (!is_one_of(noise_schedule_, schedule_names))
      fail(fmt::format("--noise-schedule {}: expected constant, cosine or linear", noise_schedule_));
    if (noise_schedule_ != "constant" && !m.has_gaussian_noise())
      fail(fmt::format("--noise-schedule {}: it scales Gaussian input noise, and this {} run has none (give "
                       "--gaussian-noise S, or --noise gaussian for dae and convdae)",
                       noise_schedule_, m.kind));
    run.noise_schedule = noise_schedule_;
  }
  run.optim.grad_clamp = given("--grad-clamp") ? grad_clamp_ : models::default_grad_clamp(m.kind);
  if (!std::isfinite(run.optim.grad_clamp) || run.optim.grad_clamp < 0)
    fail(fmt::format("--grad-clamp must be a finite number >= 0 (0: off), not {}", run.optim.grad_clamp));
  if (given("--momentum")) {
    if (run.optim.kind != "sgd") fail(fmt::format("--momentum is for --optimiser sgd, not {}", run.optim.kind));
    run.optim.momentum = momentum_;
  }
  if (run.out.empty()) run.out = "runs/" + m.kind;
  check_values(run);
  try {
    m.validate();
    run.optim.validate();
  } catch (const Error& e) {
    throw UsageError(e.what());  // a combination of flags the model refuses (the message names the field)
  }
  return run;
}

RunSettings TrainFlags::resumed_run(const RunSettings& saved, const std::string& origin) const {
  // Each flag that defines the run, as given, against the saved value.
  using nlohmann::json;
  const std::vector<std::tuple<const char*, json, json>> defining = {
      {"--model", model_kind_, saved.model.kind},          {"--sizes", sizes_, saved.model.sizes},
      {"--activation", activation_, saved.model.activation}, {"--loss", loss_, saved.model.loss},
      {"--optimiser", optimiser_, saved.optim.kind},        {"--lr", lr_, saved.optim.lr},
      {"--lr-schedule", lr_schedule_, saved.lr_schedule},   {"--noise-schedule", noise_schedule_, saved.noise_schedule},
      {"--momentum", momentum_, saved.optim.momentum},      {"--batch", raw_.batch, saved.batch},
      {"--noise", noise_, saved.model.noise},               {"--noise-level", noise_level_, saved.model.noise_level},
      {"--lambda", lambda_, saved.model.lambda},            {"--rho", rho_, saved.model.rho},
      {"--beta", beta_, saved.model.beta},                  {"--tied", tied_, saved.model.tied},
      {"--gaussian-noise", gaussian_noise_, saved.model.gaussian_noise},
      {"--grad-clamp", grad_clamp_, saved.optim.grad_clamp},
      {"--classes", classes_, saved.model.classes},         {"--seed", raw_.seed, saved.seed},
      {"--limit", raw_.limit, saved.limit},
  };
  for (const auto& [flag, value, saved_value] : defining)
    if (given(flag) && value != saved_value)
      throw UsageError(fmt::format("{} {} differs from the run being resumed ({} in {}); drop the flag or train into "
                                   "another --out",
                                   flag, value.dump(), saved_value.dump(), origin));
  RunSettings run = saved;
  run.device = raw_.device;
  run.threads = raw_.threads;
  run.data = raw_.data;
  run.mirror = raw_.mirror;
  run.out = raw_.out;
  run.resume = true;
  run.epochs = given("--epochs") ? raw_.epochs : saved.epochs;
  check_values(run);
  return run;
}

nlohmann::json model_json(const models::ModelConfig& m) {
  return {{"kind", m.kind},
          {"sizes", m.sizes},
          {"activation", m.activation},
          {"loss", m.loss},
          {"tied", m.tied},
          {"seed", m.seed},
          {"noise", m.noise},
          {"noise_level", m.noise_level},
          {"affine_rotate_deg", m.affine_rotate_deg},
          {"affine_scale", m.affine_scale},
          {"affine_shift_px", m.affine_shift_px},
          {"gaussian_noise", m.gaussian_noise},
          {"lambda", m.lambda},
          {"jacobian", m.jacobian},
          {"projections", m.projections},
          {"rho", m.rho},
          {"beta", m.beta},
          {"l1", m.l1},
          {"wta_rate", m.wta_rate},
          {"classes", m.classes}};
}

models::ModelConfig model_from_json(const nlohmann::json& j, const std::string& origin) {
  const char* at = "model.";
  models::ModelConfig m;
  m.kind = field<std::string>(j, "kind", origin, at);
  m.sizes = field<std::vector<int>>(j, "sizes", origin, at);
  m.activation = field<std::string>(j, "activation", origin, at);
  m.loss = field<std::string>(j, "loss", origin, at);
  m.tied = field<bool>(j, "tied", origin, at);
  m.seed = field<uint64_t>(j, "seed", origin, at);
  m.noise = field<std::string>(j, "noise", origin, at);
  m.noise_level = field<double>(j, "noise_level", origin, at);
  m.affine_rotate_deg = field<double>(j, "affine_rotate_deg", origin, at);
  m.affine_scale = field<double>(j, "affine_scale", origin, at);
  m.affine_shift_px = field<double>(j, "affine_shift_px", origin, at);
  m.gaussian_noise = optional_field<double>(j, "gaussian_noise", 0.0, origin, at);
  m.lambda = field<double>(j, "lambda", origin, at);
  m.jacobian = field<std::string>(j, "jacobian", origin, at);
  m.projections = field<int>(j, "projections", origin, at);
  m.rho = field<double>(j, "rho", origin, at);
  m.beta = field<double>(j, "beta", origin, at);
  m.l1 = field<double>(j, "l1", origin, at);
  m.wta_rate = optional_field<double>(j, "wta_rate", 0.05, origin, at);
  m.classes = field<int>(j, "classes", origin, at);
  for (int s : m.sizes)
    if (s < 1 || s > max_layer) throw Error(fmt::format("{}: model size {} is outside 1..{}", origin, s, max_layer));
  try {
    m.validate();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: the saved model settings are invalid: {}", origin, e.what()));
  }
  return m;
}

nlohmann::json run_json(const RunSettings& run) {
  const models::OptimConfig& o = run.optim;
  return {{"model", model_json(run.model)},
          {"optimiser",
           {{"kind", o.kind},
            {"lr", o.lr},
            {"momentum", o.momentum},
            {"nesterov", o.nesterov},
            {"weight_decay", o.resolved_weight_decay()},
            {"eps", o.resolved_eps()},
            {"lr_decay", o.lr_decay},
            {"initial_accumulator", o.initial_accumulator},
            {"beta1", o.beta1},
            {"beta2", o.beta2},
            {"grad_clamp", o.grad_clamp}}},
          {"lr_schedule", run.lr_schedule},
          {"noise_schedule", run.noise_schedule},
          {"batch", run.batch},
          {"epochs", run.epochs},
          {"seed", run.seed},
          {"limit", run.limit}};
}

RunSettings run_from_json(const nlohmann::json& j, const std::string& origin) {
  RunSettings run;
  run.model = model_from_json(field<nlohmann::json>(j, "model", origin, ""), origin);
  const nlohmann::json o = field<nlohmann::json>(j, "optimiser", origin, "");
  const char* at = "optimiser.";
  run.optim.kind = field<std::string>(o, "kind", origin, at);
  run.optim.lr = field<double>(o, "lr", origin, at);
  run.optim.momentum = field<double>(o, "momentum", origin, at);
  run.optim.nesterov = field<bool>(o, "nesterov", origin, at);
  run.optim.weight_decay = field<double>(o, "weight_decay", origin, at);
  run.optim.eps = field<double>(o, "eps", origin, at);
  run.optim.lr_decay = field<double>(o, "lr_decay", origin, at);
  run.optim.initial_accumulator = field<double>(o, "initial_accumulator", origin, at);
  run.optim.beta1 = field<double>(o, "beta1", origin, at);
  run.optim.beta2 = field<double>(o, "beta2", origin, at);
  run.optim.grad_clamp = optional_field<double>(o, "grad_clamp", 0.0, origin, at);
  run.lr_schedule = optional_field<std::string>(j, "lr_schedule", "constant", origin, "");
  if (!is_one_of(run.lr_schedule, schedule_names))
    throw Error(fmt::format("{}: the saved learning-rate schedule '{}' is not constant, cosine or linear", origin, run.lr_schedule));
  run.noise_schedule = optional_field<std::string>(j, "noise_schedule", "constant", origin, "");
  if (!is_one_of(run.noise_schedule, schedule_names))
    throw Error(fmt::format("{}: the saved noise schedule '{}' is not constant, cosine or linear", origin, run.noise_schedule));
  run.batch = field<int>(j, "batch", origin, "");
  run.epochs = field<int>(j, "epochs", origin, "");
  run.seed = field<uint64_t>(j, "seed", origin, "");
  run.limit = field<int64_t>(j, "limit", origin, "");
  try {
    run.optim.validate();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: the saved optimiser settings are invalid: {}", origin, e.what()));
  }
  if (run.batch < 1 || run.batch > max_batch || run.epochs < 1 || run.epochs > max_epochs || run.limit == 0 || run.limit < -1)
    throw Error(fmt::format("{}: the saved batch {}, epochs {} or limit {} is out of range", origin, run.batch, run.epochs, run.limit));
  return run;
}

models::TrainConfig train_config(const RunSettings& run) {
  models::TrainConfig c;
  c.epochs = run.epochs;
  c.batch_size = run.batch;
  c.seed = run.seed;
  c.optim = run.optim;
  c.lr_schedule = schedule_of(run.lr_schedule);
  c.noise_schedule = schedule_of(run.noise_schedule);
  return c;
}

std::string describe_model(const models::ModelConfig& m) {
  std::string text = fmt::format("{} {} {}, {}", m.kind, join_sizes(m.sizes, "-"), m.activation, m.loss);
  if (m.tied) text += ", tied";
  if (m.kind == "dae") text += fmt::format(", {} noise {}", m.noise, m.noise_level);
  if (m.kind == "cae") text += fmt::format(", lambda {}", m.lambda);
  if (m.kind == "wta") text += fmt::format(", top {} of the batch per unit", m.wta_rate);
  if (m.kind == "sparse") text += fmt::format(", rho {} beta {}", m.rho, m.beta);
  if (m.gaussian_noise > 0) text += fmt::format(", gaussian noise {}", m.gaussian_noise);
  if (m.classes > 0) text += fmt::format(", {} classes", m.classes);
  return text;
}

std::vector<std::pair<std::string, std::string>> settings_rows(const RunSettings& run) {
  const models::ModelConfig& m = run.model;
  std::vector<std::pair<std::string, std::string>> rows = {
      {"model", describe_model(m) + (run.noise_schedule != "constant" ? ", " + run.noise_schedule + " noise schedule" : "")},
      {"optimiser", fmt::format("{} lr {}{}{}", run.optim.kind, run.optim.lr,
                                run.optim.momentum > 0 ? fmt::format(" momentum {}", run.optim.momentum) : "",
                                run.optim.grad_clamp > 0 ? fmt::format(", gradients clamped to +-{}", run.optim.grad_clamp) : "")
                                + (run.lr_schedule != "constant" ? ", " + run.lr_schedule + " schedule" : "")},
      {"batch", std::to_string(run.batch)},
      {"epochs", std::to_string(run.epochs) + (m.kind == "sae" || m.classes > 0 ? " per phase" : "")},
      {"seed", std::to_string(run.seed)},
      {"training images", run.limit > 0 ? fmt::format("first {}", run.limit) : "all"},
      {"device", run.device},
      {"threads", run.threads > 0 ? std::to_string(run.threads) : "all cores"},
  };
  return rows;
}

}  // namespace ag::tools
