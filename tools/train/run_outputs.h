// The files a training run leaves in --out besides its checkpoint: metrics.json, loss.csv,
// the pictures (reconstructions, first-layer filters, and for the VAE samples and a latent
// interpolation) and report.html showing all of it. Every file is written atomically.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/trainer.h"
#include "tools/io/idx.h"
#include "tools/train/run_settings.h"

namespace ag::tools {

struct RunRecord {
  RunSettings run;
  nlohmann::json data = nlohmann::json::object();      // data_json()
  nlohmann::json history = nlohmann::json::array();    // epoch_record() per epoch trained
  std::vector<std::string> notes;                      // shown in the report (data fallback, resumption)
};

// {"dir", "source", "train", "test", "rows", "cols"}.
nlohmann::json data_json(const io::Mnist& mnist);
// One epoch's record: phase, epoch (1-based within its phase), train and test losses,
// samples_per_sec, seconds, step. Non-finite values become null.
nlohmann::json epoch_record(const models::EpochReport& report);

// metrics.json: {"settings", "data", "epochs": [records], and the last epoch's "train_loss",
// "test_loss", "test_bce", "test_mse", "samples_per_sec" (and "test_error" with a classifier)}.
nlohmann::json metrics_json(const RunRecord& record);
std::string loss_csv(const nlohmann::json& history);

// Writes the pictures into `dir`; returns their file names.
std::vector<std::string> write_pictures(const std::string& dir, models::Trainer& trainer, const io::Dataset& test,
                                        uint64_t seed);

// metrics.json, loss.csv, the pictures and report.html.
void write_run_files(const std::string& dir, const RunRecord& record, models::Trainer& trainer, const io::Dataset& test);

}  // namespace ag::tools
