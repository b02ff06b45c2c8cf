// ae-train: trains one autoencoder variant on MNIST and leaves in --out a checkpoint, metrics,
// pictures and an HTML report, rewritten (atomically) after every epoch. With --resume it
// continues the run saved in --out and reaches exactly the losses of an uninterrupted run.
// Everything that can be checked is checked before --out is touched, so a run that fails on
// bad flags, data or checkpoints leaves an earlier run's files as they were.
// Under mpirun it trains data-parallel (dist/dist.h, docs/scale-out.md): every rank trains its
// part of each batch, and rank 0 alone prints and writes --out; a failure on any rank ends the job.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "dist/dist.h"
#include "models/model.h"
#include "models/trainer.h"
#include "tools/train/checkpoint.h"
#include "tools/train/progress.h"
#include "tools/train/run_outputs.h"
#include "tools/train/run_settings.h"
#include "tools/train/tool_support.h"

namespace fs = std::filesystem;
using namespace ag;
using namespace ag::tools;

namespace {

// --out must be a folder or not exist yet; it is created only when training starts.
void check_out_folder(const std::string& out) {
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_directory(out, ec)) throw UsageError(fmt::format("--out {}: exists and is not a folder", out));
}

void make_out_folder(const std::string& out) {
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out, ec))
    throw UsageError(fmt::format("--out {}: cannot create the folder ({})", out, ec ? ec.message() : "not a folder"));
}

// A resumed run must see the same data, or its epochs would not continue the saved ones.
void check_same_data(const nlohmann::json& saved, const nlohmann::json& now, const std::string& origin) {
  for (const char* key : {"source", "train", "test", "rows", "cols"})
    if (saved.value(key, nlohmann::json()) != now.value(key, nlohmann::json()))
      throw UsageError(fmt::format("--data: the data in {} ({} {}) differs from the run being resumed ({} {} in {})",
                                   now.value("dir", std::string()), key, now.value(key, nlohmann::json()).dump(), key,
                                   saved.value(key, nlohmann::json()).dump(), origin));
}

int train(const TrainFlags& flags, dist::Session& session) {
  const bool root = session.root();
  RunSettings run;
  std::optional<Checkpoint> saved;
  if (flags.resume()) {
    if (flags.out().empty()) throw UsageError("--resume needs --out, the folder of the run to continue");
    const std::string path = (fs::path(flags.out()) / "checkpoint.safetensors").string();
    std::error_code ec;
    if (!fs::exists(path, ec)) throw UsageError(fmt::format("--resume: {} does not exist (nothing to resume)", path));
    saved = read_checkpoint(path);
    run = flags.resumed_run(saved->run, path);
  } else {
    run = flags.fresh_run();
  }
  check_out_folder(run.out);
  const Device device = select_device(run.device, run.threads);
  session.use_device(device);
  LoadedData data = load_data(DataSource{run.data, run.mirror, run.limit}, run.model.sizes.front());
  RunRecord record{run, data_json(data.mnist), nlohmann::json::array(), {}};
  if (session.size() > 1)
    record.notes.push_back(fmt::format("trained data-parallel on {}, each rank its part of every batch of {}",
                                       session.describe(), run.batch));
  if (!data.note.empty()) {
    if (root) std::fprintf(stderr, "note: %s\n", data.note.c_str());
    record.notes.push_back(data.note);
  }
  if (data.mnist.source == "fashion-mnist") record.notes.push_back("data: Fashion-MNIST (" + data.mnist.dir + ")");

  std::unique_ptr<models::Model> model = models::make_model(run.model, device);
  models::Trainer trainer(*model, train_config(run));
  const std::string checkpoint = (fs::path(run.out) / "checkpoint.safetensors").string();
  if (saved) {
    check_same_data(saved->data, record.data, checkpoint);
    const int trained = restore_trainer(*saved, trainer, run.epochs);
    record.history = saved->history;
    if (trainer.finished()) {
      if (root) std::printf("%s has trained %d epochs already; nothing to do (raise --epochs to continue)\n", checkpoint.c_str(), trained);
      return 0;
    }
    record.notes.push_back(fmt::format("resumed after epoch {} from {}", trained, checkpoint));
  } else {
    std::error_code ec;
    if (root && fs::exists(checkpoint, ec))
      std::fprintf(stderr, "note: %s holds an earlier run; this run replaces it epoch by epoch (--resume continues it)\n",
                   run.out.c_str());
  }
  if (root) make_out_folder(run.out);

  std::vector<std::string> phase_names;
  for (const models::Phase& phase : model->phases()) phase_names.push_back(phase.name);
  Progress progress(stderr, isatty(fileno(stderr)) != 0, run.epochs, phase_names, run.batch);
  if (root)
    progress.message(fmt::format("training {} on {} {} images ({}), {} on {}{}", describe_model(run.model),
                                 data.mnist.train.n, data.mnist.source, data.mnist.dir, run.optim.kind, to_string(device),
                                 session.size() > 1 ? ", " + session.describe() : ""));
  if (root && progress.live()) trainer.on_step = [&](const models::StepInfo& info) { progress.step(info); };
  trainer.on_epoch = [&](const models::EpochReport& report) {
    if (!root) return;  // every rank holds the same model; one writes it
    progress.epoch(report);
    record.history.push_back(epoch_record(report));
    // The checkpoint first: the other files describe it.
    save_checkpoint(checkpoint, run, trainer, record.history, record.data);
    write_run_files(run.out, record, trainer, data.mnist.test);
  };
  // The test set is evaluated where the results are written.
  trainer.fit(data_view(data.mnist.train), root ? data_view(data.mnist.test) : models::DataView{});
  if (!root) return 0;

  const nlohmann::json metrics = metrics_json(record);
  auto final_value = [&](const char* key) { return metrics.contains(key) && metrics[key].is_number() ? metrics[key].get<double>() : NAN; };
  std::printf("test loss %.5f  test bce %.5f  test squared error per image %.3f\n", final_value("test_loss"),
              final_value("test_bce"), final_value("test_mse"));
  if (!record.history.empty() && record.history.back().contains("labels"))  // a variant's own figures
    for (const auto& [key, label] : record.history.back()["labels"].items())
      std::printf("%s %.5f\n", label.get<std::string>().c_str(), final_value(key.c_str()));
  std::printf("report: %s\n", (fs::path(run.out) / "report.html").c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ae-train: train an autoencoder on MNIST; writes a checkpoint, metrics, pictures and report.html to --out"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a repeated flag: the last wins
  TrainFlags flags(app);
  std::unique_ptr<dist::Session> session;
  try {
    session = std::make_unique<dist::Session>(&argc, &argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ae-train: %s\n", e.what());
    return 1;
  }
  const int code = run_tool("ae-train", app, argc, argv, [&] { return train(flags, *session); });
  if (code != 0) session->abort(code);  // the other ranks would wait in the next step forever
  return code;
}
