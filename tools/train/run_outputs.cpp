// metrics.json, loss.csv, the run's pictures and its report.html.
#include "tools/train/run_outputs.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "models/vae.h"
#include "tools/io/atomic_file.h"
#include "tools/io/images.h"
#include "tools/io/report.h"
#include "tools/train/prior_fit.h"

namespace ag::tools {
namespace {

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

double number_or_nan(const nlohmann::json& record, const char* key) {
  auto it = record.find(key);
  return it != record.end() && it->is_number() ? it->get<double>() : NAN;
}

// A record's extra figures, "test_<name>" -> label, in a stable order.
std::vector<std::pair<std::string, std::string>> extra_labels(const nlohmann::json& record) {
  std::vector<std::pair<std::string, std::string>> out;
  if (auto it = record.find("labels"); it != record.end() && it->is_object())
    for (const auto& [key, label] : it->items())
      if (label.is_string()) out.emplace_back(key, label.get<std::string>());
  return out;
}

std::string path_in(const std::string& dir, const char* file) { return (std::filesystem::path(dir) / file).string(); }

// The first layer's weight: the first [units, input] matrix among the parameters.
int first_layer_weight(models::Model& model) {
  ParamStore& params = model.params();
  for (int i = 0; i < params.count(); ++i) {
    const Shape& s = params.shape(i);
    if (s.rank == 2 && s[1] == model.input_dim()) return i;
  }
  return -1;
}

// The first convolution's filters: the first [F, C, kh, kw] parameter, input channel 0 of each
// filter drawn at `zoom` pixels per weight.
int first_conv_filters(models::Model& model) {
  ParamStore& params = model.params();
  for (int i = 0; i < params.count(); ++i)
    if (params.shape(i).rank == 4) return i;
  return -1;
}

void write_conv_filters(const std::string& path, const HostTensor& w, int zoom) {
  const Shape& s = w.shape();
  const int64_t count = std::min<int64_t>(100, s[0]), kh = s[2], kw = s[3];
  std::vector<float> tiles(size_t(count * kh * kw * zoom * zoom));
  for (int64_t f = 0; f < count; ++f)
    for (int64_t r = 0; r < kh * zoom; ++r)
      for (int64_t q = 0; q < kw * zoom; ++q)
        tiles[size_t((f * kh * zoom + r) * kw * zoom + q)] = float(w.at(((f * s[1]) * kh + r / zoom) * kw + q / zoom));
  io::TileLayout layout;
  layout.tile_rows = int(kh * zoom);
  layout.tile_cols = int(kw * zoom);
  layout.columns = int(std::min<int64_t>(count, 16));
  layout.scale = io::TileScale::minmax_each;
  io::write_png_gray(path, io::tile_images(tiles, count, layout));
}

void write_tiles(const std::string& path, const std::vector<float>& tiles, int64_t count, const io::Dataset& like,
                 int columns, io::TileScale scale) {
  io::TileLayout layout;
  layout.tile_rows = like.rows;
  layout.tile_cols = like.cols;
  layout.columns = columns;
  layout.scale = scale;
  io::write_png_gray(path, io::tile_images(tiles, count, layout));
}

}  // namespace

nlohmann::json data_json(const io::Mnist& mnist) {
  return {{"dir", mnist.dir}, {"source", mnist.source},  {"train", mnist.train.n},
          {"test", mnist.test.n}, {"rows", mnist.train.rows}, {"cols", mnist.train.cols}};
}

nlohmann::json epoch_record(const models::EpochReport& r) {
  nlohmann::json j = {{"phase", r.phase_name},
                      {"phase_index", r.phase},
                      {"epoch", r.epoch + 1},
                      {"train_loss", finite_or_null(r.train_loss)},
                      {"test_loss", finite_or_null(r.test.loss)},
                      {"test_bce", finite_or_null(r.test.bce)},
                      {"test_mse", finite_or_null(r.test.mse)},
                      {"samples_per_sec", finite_or_null(r.samples_per_s)},
                      {"seconds", finite_or_null(r.seconds)},
                      {"step", r.step}};
  if (std::isfinite(r.test.error)) j["test_error"] = r.test.error;
  for (const models::EvalReport::Extra& e : r.test.extra) {  // a variant's own figures (seq2seq: free-running BCE)
    j["test_" + e.name] = finite_or_null(e.value);
    j["labels"]["test_" + e.name] = e.label;
  }
  return j;
}

nlohmann::json metrics_json(const RunRecord& record) {
  nlohmann::json settings = run_json(record.run);
  settings["device"] = record.run.device;
  settings["threads"] = record.run.threads;
  nlohmann::json j = {{"settings", settings}, {"data", record.data}, {"epochs", record.history}};
  if (!record.history.empty()) {
    const nlohmann::json& last = record.history.back();
    for (const char* key : {"train_loss", "test_loss", "test_bce", "test_mse", "samples_per_sec", "test_error"})
      if (last.contains(key)) j[key] = last[key];
    for (const auto& [key, label] : extra_labels(last)) j[key] = last[key];
  }
  return j;
}

std::string loss_csv(const nlohmann::json& history) {
  // A variant's extra figures (the first record's) become columns after the standard ones.
  const auto extra = history.empty() ? std::vector<std::pair<std::string, std::string>>{} : extra_labels(history.front());
  std::string csv = "phase,epoch,train_loss,test_loss,test_bce,test_mse,samples_per_sec,seconds";
  for (const auto& [key, label] : extra) csv += fmt::format(",{}", key);
  csv += "\n";
  for (const nlohmann::json& r : history) {
    auto value = [&](const char* key) {
      double v = number_or_nan(r, key);
      return std::isfinite(v) ? fmt::format("{:.9g}", v) : std::string();
    };
    csv += fmt::format("{},{},{},{},{},{},{},{}", r.value("phase", std::string()), r.value("epoch", 0), value("train_loss"),
                       value("test_loss"), value("test_bce"), value("test_mse"), value("samples_per_sec"), value("seconds"));
    for (const auto& [key, label] : extra) csv += fmt::format(",{}", value(key.c_str()));
    csv += "\n";
  }
  return csv;
}

std::vector<std::string> write_pictures(const std::string& dir, models::Trainer& trainer, const io::Dataset& test,
                                        uint64_t seed) {
  std::vector<std::string> written;
  models::Model& model = trainer.model();
  const int64_t dim = model.input_dim();

  const int64_t shown = std::min<int64_t>(10, test.n);
  if (shown > 0) {
    std::vector<float> tiles(test.images.begin(), test.images.begin() + shown * dim);
    std::vector<float> recon = trainer.reconstruct(test.images.data(), shown);
    tiles.insert(tiles.end(), recon.begin(), recon.end());
    write_tiles(path_in(dir, "reconstructions.png"), tiles, 2 * shown, test, int(shown), io::TileScale::clamp01);
    written.push_back("reconstructions.png");
  }

  if (int w = first_layer_weight(model); w >= 0) {
    HostTensor weight = model.params().read(w);
    const int64_t count = std::min<int64_t>(100, weight.shape()[0]);
    std::vector<float> tiles(size_t(count * dim));
    for (int64_t i = 0; i < count * dim; ++i) tiles[size_t(i)] = float(weight.at(i));
    write_tiles(path_in(dir, "filters.png"), tiles, count, test, 10, io::TileScale::minmax_each);
    written.push_back("filters.png");
  }

  if (int w = first_conv_filters(model); w >= 0 && first_layer_weight(model) < 0) {
    write_conv_filters(path_in(dir, "filters.png"), model.params().read(w), 8);
    written.push_back("filters.png");
  }

  if (shown > 0) {
    auto [noisy, denoised] = trainer.denoise(test.images.data(), shown);
    if (!noisy.empty()) {
      std::vector<float> tiles(test.images.begin(), test.images.begin() + shown * dim);
      tiles.insert(tiles.end(), noisy.begin(), noisy.end());
      tiles.insert(tiles.end(), denoised.begin(), denoised.end());
      write_tiles(path_in(dir, "denoising.png"), tiles, 3 * shown, test, int(shown), io::TileScale::clamp01);
      written.push_back("denoising.png");
    }
  }

  if (auto* generative = dynamic_cast<models::Generative*>(&model)) {  // vae, catvae, aae
    write_tiles(path_in(dir, "samples.png"), generative->decode(generative->prior(100, 1.0, seed)), 100, test, 10,
                io::TileScale::clamp01);
    written.push_back("samples.png");
  }
  if (auto* vae = dynamic_cast<models::VariationalAutoencoder*>(&model)) {
    const int64_t pairs = std::min<int64_t>(5, test.n / 2);
    constexpr int steps = 10;
    if (pairs > 0) {
      std::vector<float> tiles;
      for (int64_t r = 0; r < pairs; ++r) {
        std::vector<float> row = vae->interpolate(test.image(2 * r), test.image(2 * r + 1), steps);
        tiles.insert(tiles.end(), row.begin(), row.end());
      }
      write_tiles(path_in(dir, "interpolation.png"), tiles, pairs * steps, test, steps, io::TileScale::clamp01);
      written.push_back("interpolation.png");
    }
  }
  return written;
}

void write_run_files(const std::string& dir, const RunRecord& record, models::Trainer& trainer, const io::Dataset& test) {
  nlohmann::json metrics = metrics_json(record);
  std::vector<std::string> pictures = write_pictures(dir, trainer, test, record.run.seed);
  std::optional<PriorFit> fit;  // the adversarial autoencoder's codes against its prior
  if (auto* aae = dynamic_cast<models::AdversarialAutoencoder*>(&trainer.model()); aae && test.n > 0) {
    fit = write_prior_pictures(dir, *aae, test, pictures);
    metrics["code_fit"] = fit->json();
  }
  io::write_file_atomic(path_in(dir, "metrics.json"), metrics.dump(2) + "\n");
  io::write_file_atomic(path_in(dir, "loss.csv"), loss_csv(record.history));

  io::ReportData report;
  report.title = "aegraph: " + describe_model(record.run.model);
  report.settings = settings_rows(record.run);
  report.settings.emplace_back("data", fmt::format("{} ({}), {} training and {} test images of {}x{}",
                                                   record.data.value("dir", std::string()),
                                                   record.data.value("source", std::string()), record.data.value("train", 0),
                                                   record.data.value("test", 0), record.data.value("rows", 0),
                                                   record.data.value("cols", 0)));
  auto metric = [&](const char* label, const char* key, const char* format) {
    double v = number_or_nan(metrics, key);
    if (std::isfinite(v)) report.metrics.emplace_back(label, fmt::format(fmt::runtime(format), v));
  };
  metric("test loss (the model's objective)", "test_loss", "{:.5f}");
  metric("test BCE per pixel", "test_bce", "{:.5f}");
  if (fit) {
    report.metrics.emplace_back("test codes: mean per dimension", fmt::format("{:.3f}", fmt::join(fit->mean, ", ")));
    report.metrics.emplace_back("test codes: std per dimension", fmt::format("{:.3f}", fmt::join(fit->std, ", ")));
    report.metrics.emplace_back("test codes inside radius 1 (N(0, I) in 2-D: 0.393)", fmt::format("{:.3f}", fit->within1));
    report.metrics.emplace_back("test codes inside radius 2 (N(0, I) in 2-D: 0.865)", fmt::format("{:.3f}", fit->within2));
  }
  for (const auto& [key, label] : extra_labels(record.history.empty() ? nlohmann::json() : record.history.back()))
    metric(label.c_str(), key.c_str(), "{:.5f}");
  metric("test squared error per image", "test_mse", "{:.3f}");
  metric("train loss", "train_loss", "{:.5f}");
  metric("test classification error", "test_error", "{:.4f}");
  metric("samples/s (last epoch)", "samples_per_sec", "{:.0f}");
  report.metrics.emplace_back("epochs trained", std::to_string(record.history.size()));

  io::Series train{"train loss", {}}, test_loss{"test loss", {}};
  for (const nlohmann::json& r : record.history) {
    train.values.push_back(number_or_nan(r, "train_loss"));
    test_loss.values.push_back(number_or_nan(r, "test_loss"));
  }
  report.curves = {train, test_loss};
  report.pictures.clear();
  for (const io::Picture& p : io::standard_pictures())
    if (std::find(pictures.begin(), pictures.end(), p.file) != pictures.end()) report.pictures.push_back(p);
  report.notes = record.notes;
  io::write_report(path_in(dir, "report.html"), report);
}

}  // namespace ag::tools
