// ae-eval: loads a checkpoint (rebuilding the model from the settings in its metadata),
// reports its test losses, compares its reconstruction error with PCA at the same code size
// (the tutorial's claim that autoencoders beat PCA), trains a linear classifier on the codes
// of both, optionally writes the test codes as CSV and everything as JSON, and for the generative
// models (vae, catvae, aae) runs MCMC chains from the prior (--mcmc) and pictures them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "models/model.h"
#include "models/trainer.h"
#include "tools/io/atomic_file.h"
#include "tools/io/images.h"
#include "tools/train/checkpoint.h"
#include "tools/train/linear_probe.h"
#include "tools/train/pca.h"
#include "tools/train/run_outputs.h"
#include "tools/train/run_settings.h"
#include "tools/train/tool_support.h"

namespace fs = std::filesystem;
using namespace ag;
using namespace ag::tools;

namespace {

struct EvalFlags {
  std::string checkpoint, codes, json, device = "cpu", mcmc_png;
  DataSource data;
  int threads = 0, probe_epochs = 10, mcmc = 0;
  double sample_std = 1.0;
  uint64_t seed = 0;
};

// An output file's folder must exist before the long work starts, not after.
void check_writable(const std::string& flag, const std::string& path) {
  if (path.empty()) return;
  fs::path folder = fs::path(path).parent_path();
  std::error_code ec;
  if (!folder.empty() && !fs::is_directory(folder, ec))
    throw UsageError(fmt::format("{} {}: the folder {} does not exist", flag, path, folder.string()));
  if (fs::is_directory(path, ec)) throw UsageError(fmt::format("{} {}: is a folder, expected a file name", flag, path));
}

std::string codes_csv(const std::vector<float>& codes, const io::Dataset& test, int dim) {
  std::string csv = "index,label";
  for (int j = 0; j < dim; ++j) csv += fmt::format(",code{}", j);
  csv += '\n';
  for (int64_t i = 0; i < test.n; ++i) {
    csv += fmt::format("{},{}", i, int(test.labels[size_t(i)]));
    for (int j = 0; j < dim; ++j) csv += fmt::format(",{:.7g}", codes[size_t(i * dim + j)]);
    csv += '\n';
  }
  return csv;
}

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// --mcmc: `chains` chains of `steps` decode/re-encode steps from the prior; the picture has a
// column per chain and a row per step shown (every step up to 9, else ten steps evenly spaced
// from 0 to the last). Returns the JSON record: the mean absolute change per pixel at each step.
nlohmann::json run_mcmc(models::Generative& model, const EvalFlags& flags, const std::string& png, const io::Dataset& like) {
  constexpr int chains = 10;
  const std::vector<std::vector<float>> images = models::mcmc_chain(model, chains, flags.mcmc, flags.sample_std, flags.seed);
  const int rows = std::min(flags.mcmc + 1, 10);
  std::vector<float> tiles;
  std::vector<int> shown;
  for (int r = 0; r < rows; ++r) {
    const int step = rows == 1 ? 0 : int(std::lround(double(r) * flags.mcmc / (rows - 1)));
    shown.push_back(step);
    tiles.insert(tiles.end(), images[size_t(step)].begin(), images[size_t(step)].end());
  }
  io::TileLayout layout;
  layout.tile_rows = like.rows;
  layout.tile_cols = like.cols;
  layout.columns = chains;
  io::write_png_gray(png, io::tile_images(tiles, int64_t(rows) * chains, layout));
  std::vector<double> change;
  for (size_t s = 1; s < images.size(); ++s) {
    double total = 0;
    for (size_t i = 0; i < images[s].size(); ++i) total += std::abs(double(images[s][i]) - double(images[s - 1][i]));
    change.push_back(total / double(images[s].size()));
  }
  fmt::print("mcmc         {} chains x {} steps from the prior (std {}): {} (rows: steps {})\n", chains, flags.mcmc,
             flags.sample_std, png, fmt::join(shown, ", "));
  if (!change.empty())
    fmt::print("             mean change per pixel: step 1 {:.4f}, step {} {:.4f}\n", change.front(), flags.mcmc, change.back());
  return {{"steps", flags.mcmc}, {"sample_std", flags.sample_std}, {"chains", chains}, {"picture", png},
          {"rows_show_steps", shown}, {"mean_change_per_pixel", change}};
}

int evaluate(const EvalFlags& flags) {
  std::string path = flags.checkpoint;
  std::error_code ec;
  if (fs::is_directory(path, ec)) path = (fs::path(path) / "checkpoint.safetensors").string();
  if (flags.probe_epochs < 0 || flags.probe_epochs > 1000)
    throw UsageError(fmt::format("--probe-epochs must be between 0 and 1000, not {}", flags.probe_epochs));
  if (flags.threads < 0 || flags.threads > 1024)
    throw UsageError(fmt::format("--threads must be between 0 (all cores) and 1024, not {}", flags.threads));
  if (flags.data.limit != -1 && flags.data.limit < 1)
    throw UsageError(fmt::format("--limit must be at least 1, not {}", flags.data.limit));
  if (flags.mcmc < 0 || flags.mcmc > 10000) throw UsageError(fmt::format("--mcmc must be between 0 and 10000 steps, not {}", flags.mcmc));
  if (!(flags.sample_std > 0) || !std::isfinite(flags.sample_std))
    throw UsageError(fmt::format("--sample-std must be a positive number, not {}", flags.sample_std));
  const std::string mcmc_png = !flags.mcmc_png.empty() ? flags.mcmc_png
                                                       : (fs::path(path).parent_path() / "samples_mcmc.png").string();
  check_writable("--codes", flags.codes);
  check_writable("--json", flags.json);
  if (flags.mcmc > 0) check_writable("--mcmc-png", mcmc_png);

  const Checkpoint checkpoint = read_checkpoint(path);
  const Device device = select_device(flags.device, flags.threads);
  const models::ModelConfig& config = checkpoint.run.model;
  std::unique_ptr<models::Model> model = models::make_model(config, device);
  auto* generative = dynamic_cast<models::Generative*>(model.get());
  if (flags.mcmc > 0 && !generative)
    throw UsageError(fmt::format("--mcmc: {}: model '{}' has no prior to sample from (vae, catvae and aae have)", path, config.kind));
  models::Trainer trainer(*model, train_config(checkpoint.run));
  load_parameters(checkpoint, *model);
  LoadedData data = load_data(flags.data, config.sizes.front(), "from " + path);
  if (!data.note.empty()) std::fprintf(stderr, "note: %s\n", data.note.c_str());
  const io::Dataset& train = data.mnist.train;
  const io::Dataset& test = data.mnist.test;

  fmt::print("checkpoint   {}: {} ({} epoch{} trained)\n", path, describe_model(config), checkpoint.history.size(),
             checkpoint.history.size() == 1 ? "" : "s");
  fmt::print("data         {} ({}): {} training, {} test images\n", data.mnist.dir, data.mnist.source, train.n, test.n);
  const int final_phase = int(model->phases().size()) - 1;
  const models::EvalReport report = trainer.evaluate(data_view(test), final_phase);
  fmt::print("test loss    {:.5f} (the model's objective)\n", report.loss);
  fmt::print("test BCE     {:.5f} per pixel\n", report.bce);
  for (const models::EvalReport::Extra& e : report.extra) fmt::print("{}: {:.5f}\n", e.label, e.value);
  if (std::isfinite(report.error)) fmt::print("test error   {:.2f}% (the model's classifier)\n", 100 * report.error);

  const int dim = model->input_dim(), code = model->code_dim();
  const int components = std::min(code, dim);
  const Pca pca = fit_pca(train.images.data(), train.n, dim, components);
  const double pca_mse = pca_squared_error(pca, test.images.data(), test.n);
  fmt::print("squared error per image (summed over pixels): autoencoder {:.3f}, PCA with {} components {:.3f}\n",
             report.mse, components, pca_mse);

  nlohmann::json out = {{"checkpoint", path},
                        {"model", model_json(config)},
                        {"data", data_json(data.mnist)},
                        {"test_loss", finite_or_null(report.loss)},
                        {"test_bce", finite_or_null(report.bce)},
                        {"test_mse", finite_or_null(report.mse)},
                        {"pca", {{"components", components}, {"test_mse", finite_or_null(pca_mse)}}}};
  if (std::isfinite(report.error)) out["test_error"] = report.error;
  for (const models::EvalReport::Extra& e : report.extra) out["test_" + e.name] = finite_or_null(e.value);

  const std::vector<float> test_codes = compute_codes(*model, test.images.data(), test.n);
  if (flags.probe_epochs > 0) {
    const std::vector<float> train_codes = compute_codes(*model, train.images.data(), train.n);
    const std::vector<float> pca_train = pca_codes(pca, train.images.data(), train.n);
    const std::vector<float> pca_test = pca_codes(pca, test.images.data(), test.n);
    ProbeConfig probe;
    probe.epochs = flags.probe_epochs;
    probe.seed = flags.seed;
    constexpr int classes = 10;  // load_mnist checks labels are 0..9
    const ProbeResult ae = linear_probe({train_codes.data(), train.labels.data(), train.n},
                                        {test_codes.data(), test.labels.data(), test.n}, code, classes, probe, device);
    const ProbeResult linear = linear_probe({pca_train.data(), train.labels.data(), train.n},
                                            {pca_test.data(), test.labels.data(), test.n}, components, classes, probe, device);
    fmt::print("linear classifier test error: autoencoder codes {:.2f}%, PCA codes {:.2f}% ({} epochs of Adam)\n",
               100 * ae.test_error, 100 * linear.test_error, probe.epochs);
    out["probe"] = {{"epochs", probe.epochs},
                    {"autoencoder_test_error", ae.test_error},
                    {"autoencoder_train_error", ae.train_error},
                    {"pca_test_error", linear.test_error},
                    {"pca_train_error", linear.train_error}};
  }
  if (!flags.codes.empty()) {
    io::write_file_atomic(flags.codes, codes_csv(test_codes, test, code));
    fmt::print("codes        {} ({} test images x {} values)\n", flags.codes, test.n, code);
    out["codes"] = flags.codes;
  }
  if (flags.mcmc > 0) out["mcmc"] = run_mcmc(*generative, flags, mcmc_png, test);
  if (!flags.json.empty()) io::write_file_atomic(flags.json, out.dump(2) + "\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ae-eval: test losses of a checkpoint, PCA at the same code size, and a linear classifier on the codes"};
  EvalFlags flags;
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a repeated flag: the last wins
  app.add_option("checkpoint", flags.checkpoint, "a checkpoint.safetensors, or the run folder holding one")->required();
  app.add_option("--data", flags.data.dir, "folder holding the four MNIST files (else $AEGRAPH_DATA, else ./data/mnist)");
  app.add_option("--mirror", flags.data.mirror, "base URL to download MNIST from instead of the public mirrors");
  app.add_option("--limit", flags.data.limit, "fit PCA and the classifiers on the first N training images only");
  app.add_option("--codes", flags.codes, "write the test set's codes to this CSV file (index, label, code0...)");
  app.add_option("--json", flags.json, "write the results to this JSON file");
  app.add_option("--probe-epochs", flags.probe_epochs, "epochs of the linear classifiers (0 skips them)")->capture_default_str();
  app.add_option("--device", flags.device, "cpu | cuda")->capture_default_str();
  app.add_option("--threads", flags.threads, "CPU threads (0: all cores)")->capture_default_str();
  app.add_option("--seed", flags.seed, "seed of the classifiers' initialisation and shuffling, and of --mcmc's draws")->capture_default_str();
  app.add_option("--mcmc", flags.mcmc,
                 "vae, catvae, aae: run 10 chains of N steps from the prior (decode, re-encode: the vae samples q(z|x)) "
                 "and save the picture samples_mcmc.png beside the checkpoint");
  app.add_option("--sample-std", flags.sample_std, "--mcmc: the std of the Gaussian prior draws (catvae: unused)")
      ->capture_default_str();
  app.add_option("--mcmc-png", flags.mcmc_png, "--mcmc: write the picture here instead");
  return run_tool("ae-eval", app, argc, argv, [&] { return evaluate(flags); });
}
