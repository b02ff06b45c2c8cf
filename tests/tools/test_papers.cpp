// What docs/papers.md's reproductions need from ae-train, on tiny generated data (they run in CI
// and under the sanitizers): the cosine learning-rate schedule (--lr-schedule cosine), and a
// softmax head fine-tuned with the labels on any dense encoder (--classes for ae, dae, cae,
// sparse and deep, not only sae). The reproductions themselves, on the real MNIST, are in
// papers_mnist.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <catch2/catch.hpp>

#include "models/model.h"
#include "models/trainer.h"
#include "tool_fixture.h"
#include "tools/train/run_settings.h"

using namespace ag;
using namespace ag::tools::testing;
using nlohmann::json;

namespace {

std::vector<std::string> run_args(const TempDir& tmp, const std::string& out, std::vector<std::string> extra) {
  std::vector<std::string> args = {"--data", tmp.file("data"), "--out", out, "--threads", "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

void check_succeeded(const ToolResult& r) {
  INFO(r.command << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
}

// A scalar F32 tensor of a checkpoint.
double checkpoint_scalar(const std::string& path, const std::string& name) {
  const SafetensorsHeader h = parse_safetensors(read_file(path));
  INFO(path << ": " << name);
  REQUIRE(h.header.contains(name));
  const json& t = h.header[name];
  REQUIRE(t["dtype"] == "F32");
  const uint64_t at = t["data_offsets"][0].get<uint64_t>();
  REQUIRE(t["data_offsets"][1].get<uint64_t>() == at + 4);
  float v = 0;
  std::memcpy(&v, h.data.data() + at, 4);
  return v;
}

// n 16-pixel images in [0, 1] for the in-process trainers (a fixed pattern, not digits).
std::vector<float> patterned_images(int64_t n) {
  std::vector<float> images(size_t(n) * 16);
  for (size_t i = 0; i < images.size(); ++i) images[i] = float((i * 7919) % 101) / 100.0f;
  return images;
}

}  // namespace

TEST_CASE("scheduled_lr: cosine annealing per epoch of a phase, constant by default") {
  models::TrainConfig c;
  c.optim.lr = 0.1;
  c.epochs = 4;
  for (int e = 0; e < 4; ++e) CHECK(models::scheduled_lr(c, e) == 0.1);
  c.lr_schedule = models::LrSchedule::cosine;
  CHECK(models::scheduled_lr(c, 0) == Approx(0.1));
  CHECK(models::scheduled_lr(c, 1) == Approx(0.1 * (1 + std::sqrt(0.5)) / 2));
  CHECK(models::scheduled_lr(c, 2) == Approx(0.05));
  CHECK(models::scheduled_lr(c, 3) == Approx(0.1 * (1 - std::sqrt(0.5)) / 2));
}

TEST_CASE("schedule_factor: constant 1, cosine (1 + cos(pi e / E)) / 2, linear 1 - e / E, and --lr-schedule linear") {
  for (int e = 0; e < 5; ++e) CHECK(models::schedule_factor(models::Schedule::constant, e, 5) == 1.0);
  CHECK(models::schedule_factor(models::Schedule::cosine, 0, 4) == 1.0);
  CHECK(models::schedule_factor(models::Schedule::cosine, 2, 4) == Approx(0.5));
  CHECK(models::schedule_factor(models::Schedule::linear, 0, 4) == 1.0);
  CHECK(models::schedule_factor(models::Schedule::linear, 1, 4) == 0.75);
  CHECK(models::schedule_factor(models::Schedule::linear, 3, 4) == 0.25);
  models::TrainConfig c;
  c.optim.lr = 0.1;
  c.epochs = 4;
  c.lr_schedule = models::Schedule::linear;
  CHECK(models::scheduled_lr(c, 2) == Approx(0.05));
}

TEST_CASE("a noise schedule anneals the Gaussian input noise epoch by epoch, and needs a model with such noise") {
  // 512 random images, the model frozen (lr 0): each epoch's training loss is the objective at
  // that epoch's noise, which grows with its std (noise this loud swamps the images). Linear over
  // 4 epochs: 1.0, 0.75, 0.5, 0.25 times gaussian_noise.
  const std::vector<float> images = patterned_images(512);
  const models::DataView data{images.data(), 512, 16, nullptr};
  models::ModelConfig mc;
  mc.kind = "ae";
  mc.sizes = {16, 8};
  mc.gaussian_noise = 20;
  models::TrainConfig tc;
  tc.epochs = 4;
  tc.batch_size = 64;
  tc.optim.kind = "sgd";
  tc.optim.lr = 0;
  auto losses = [&](models::Schedule schedule, double noise) {
    models::ModelConfig m = mc;
    m.gaussian_noise = noise;
    tc.noise_schedule = schedule;
    auto model = models::make_model(m, Device::cpu);
    models::Trainer t(*model, tc);
    std::vector<double> out;
    for (const models::EpochReport& r : t.fit(data, data)) out.push_back(r.train_loss);
    return out;
  };
  const std::vector<double> linear = losses(models::Schedule::linear, 20), loud = losses(models::Schedule::constant, 20),
                            quiet = losses(models::Schedule::constant, 5);
  INFO("linear " << linear[0] << " " << linear[1] << " " << linear[2] << " " << linear[3] << ", constant " << loud[0] << " "
                 << loud[3] << ", constant at a quarter " << quiet[3]);
  for (int e = 1; e < 4; ++e) CHECK(linear[size_t(e)] < 0.9 * linear[size_t(e) - 1]);  // less noise, lower loss
  CHECK(linear[0] == Approx(loud[0]).epsilon(0.1));  // epoch 1 at the full std (other draws, same law)
  CHECK(linear[3] == Approx(quiet[3]).epsilon(0.1));  // epoch 4 at a quarter
  CHECK(loud[3] == Approx(loud[0]).epsilon(0.1));     // a constant schedule keeps the std
  CHECK(linear[3] < 0.6 * loud[3]);

  models::ModelConfig clean = mc;
  clean.gaussian_noise = 0;
  tc.noise_schedule = models::Schedule::cosine;
  auto model = models::make_model(clean, Device::cpu);
  CHECK_THROWS_WITH(models::Trainer(*model, tc), Catch::Contains("noise schedule") && Catch::Contains("'ae'"));
}

TEST_CASE("a cosine schedule resumed from a saved state continues exactly", "[resume]") {
  // 40 random images; the trainer in-process, saved after 2 of 4 epochs and loaded into a fresh one.
  const std::vector<float> images = patterned_images(40);
  const models::DataView data{images.data(), 40, 16, nullptr};
  models::ModelConfig mc;
  mc.kind = "ae";
  mc.sizes = {16, 4};
  models::TrainConfig tc;
  tc.epochs = 4;
  tc.batch_size = 8;
  tc.optim.kind = "adam";
  tc.optim.lr = 0.05;
  tc.lr_schedule = models::LrSchedule::cosine;

  auto straight_model = models::make_model(mc, Device::cpu);
  models::Trainer straight(*straight_model, tc);
  std::vector<double> lrs;
  straight.on_epoch = [&](const models::EpochReport&) { lrs.push_back(straight.optimizer().lr()); };
  const std::vector<models::EpochReport> a = straight.fit(data, data);
  REQUIRE(a.size() == 4);
  for (int e = 0; e < 4; ++e) CHECK(lrs[size_t(e)] == Approx(models::scheduled_lr(tc, e)).epsilon(1e-6));

  auto first_model = models::make_model(mc, Device::cpu);
  models::Trainer first(*first_model, tc);
  first.run_epoch(data, data);
  first.run_epoch(data, data);
  const models::TrainerState saved = first.save_state();
  auto second_model = models::make_model(mc, Device::cpu);
  models::Trainer second(*second_model, tc);
  second.load_state(saved);
  const std::vector<models::EpochReport> b = second.fit(data, data);
  REQUIRE(b.size() == 2);
  for (int e = 0; e < 2; ++e) {
    CHECK(b[size_t(e)].train_loss == a[size_t(e) + 2].train_loss);
    CHECK(b[size_t(e)].test.loss == a[size_t(e) + 2].test.loss);
  }
  // And it differs from a constant rate (the schedule did something).
  tc.lr_schedule = models::LrSchedule::constant;
  auto constant_model = models::make_model(mc, Device::cpu);
  models::Trainer constant(*constant_model, tc);
  CHECK(constant.fit(data, data).back().train_loss != a.back().train_loss);
}

TEST_CASE("ae-train --lr-schedule cosine: the rate of the last epoch in the checkpoint, settings, resume rules",
          "[resume]") {
  TempDir tmp;
  write_dataset(tmp.file("data"), 200, 50);
  const std::string cosine = tmp.file("cosine"), constant = tmp.file("constant");
  const std::vector<std::string> model = {"--sizes", "784,8", "--optimiser", "adam", "--lr", "0.01", "--epochs", "4"};
  std::vector<std::string> args = run_args(tmp, cosine, model);
  args.insert(args.end(), {"--lr-schedule", "cosine"});
  check_succeeded(ae_train(args));
  check_succeeded(ae_train(run_args(tmp, constant, model)));

  // Epoch 4 of 4 ran at 0.01 (1 + cos(3 pi / 4)) / 2; the constant run kept 0.01.
  const double pi = std::acos(-1.0);
  CHECK(checkpoint_scalar(cosine + "/checkpoint.safetensors", "optim.lr") ==
        Approx(0.01 * (1 + std::cos(3 * pi / 4)) / 2).epsilon(1e-6));
  CHECK(checkpoint_scalar(constant + "/checkpoint.safetensors", "optim.lr") == Approx(0.01).epsilon(1e-6));
  const json a = read_json(cosine + "/metrics.json"), b = read_json(constant + "/metrics.json");
  CHECK(a["settings"]["lr_schedule"] == "cosine");
  CHECK(b["settings"]["lr_schedule"] == "constant");
  CHECK(a["epochs"].size() == 4);
  CHECK(std::isfinite(a["test_loss"].get<double>()));
  CHECK(a["epochs"][0]["train_loss"] == b["epochs"][0]["train_loss"]);  // epoch 1 runs at the full rate
  CHECK(a["epochs"][1]["train_loss"] != b["epochs"][1]["train_loss"]);
  CHECK(read_file(cosine + "/report.html").find("cosine schedule") != std::string::npos);

  // The rates depend on --epochs: a cosine run resumes only to its own count.
  const ToolResult more = ae_train({"--resume", "--out", cosine, "--data", tmp.file("data"), "--epochs", "6"});
  check_refusal(more, "ae-train", {"--epochs 6", "cosine"});
  CHECK(more.exit_code == 2);
  const ToolResult differs = ae_train({"--resume", "--out", constant, "--data", tmp.file("data"), "--lr-schedule", "cosine"});
  check_refusal(differs, "ae-train", {"--lr-schedule"});
  check_refusal(ae_train(run_args(tmp, tmp.file("bad"), {"--lr-schedule", "step"})), "ae-train", {"--lr-schedule step"});
}

TEST_CASE("settings JSON: lr_schedule and noise_schedule round-trip, and a checkpoint written before them reads as constant") {
  tools::RunSettings run;
  run.model.kind = "ae";
  run.model.gaussian_noise = 0.2;
  run.model = run.model.resolved();
  run.lr_schedule = "cosine";
  run.noise_schedule = "linear";
  json j = tools::run_json(run);
  CHECK(tools::run_from_json(j, "test").lr_schedule == "cosine");
  CHECK(tools::run_from_json(j, "test").noise_schedule == "linear");
  j.erase("lr_schedule");
  j.erase("noise_schedule");
  CHECK(tools::run_from_json(j, "old").lr_schedule == "constant");
  CHECK(tools::run_from_json(j, "old").noise_schedule == "constant");
  j["noise_schedule"] = "loud";
  CHECK_THROWS_WITH(tools::run_from_json(j, "ck.safetensors"), Catch::Contains("ck.safetensors") && Catch::Contains("loud"));
  j["noise_schedule"] = "cosine";
  j["lr_schedule"] = "warm";
  CHECK_THROWS_WITH(tools::run_from_json(j, "ck.safetensors"), Catch::Contains("ck.safetensors") && Catch::Contains("warm"));
}

TEST_CASE("ae-train --noise-schedule: in the settings and the report, resume rules, refused without Gaussian noise",
          "[resume]") {
  TempDir tmp;
  write_dataset(tmp.file("data"), 200, 50);
  const std::string annealed = tmp.file("annealed");
  const std::vector<std::string> model = {"--sizes", "784,8", "--optimiser", "adam", "--epochs", "3"};
  std::vector<std::string> args = run_args(tmp, annealed, model);
  args.insert(args.end(), {"--gaussian-noise", "0.3", "--noise-schedule", "cosine"});
  check_succeeded(ae_train(args));
  const json a = read_json(annealed + "/metrics.json");
  CHECK(a["settings"]["noise_schedule"] == "cosine");
  CHECK(a["epochs"].size() == 3);
  CHECK(read_file(annealed + "/report.html").find("cosine noise schedule") != std::string::npos);

  const ToolResult more = ae_train({"--resume", "--out", annealed, "--data", tmp.file("data"), "--epochs", "5"});
  check_refusal(more, "ae-train", {"--epochs 5", "noise"});
  CHECK(more.exit_code == 2);
  const ToolResult differs =
      ae_train({"--resume", "--out", annealed, "--data", tmp.file("data"), "--epochs", "3", "--noise-schedule", "linear"});
  check_refusal(differs, "ae-train", {"--noise-schedule"});
  const ToolResult clean = ae_train(run_args(tmp, tmp.file("clean"), {"--noise-schedule", "cosine"}));
  check_refusal(clean, "ae-train", {"--noise-schedule", "--gaussian-noise"});
  CHECK(clean.exit_code == 2);
  check_refusal(ae_train(run_args(tmp, tmp.file("bad"), {"--gaussian-noise", "0.3", "--noise-schedule", "step"})), "ae-train",
                {"--noise-schedule step"});
  // dae's own Gaussian corruption takes a schedule; its mask corruption (a probability) does not.
  check_succeeded(ae_train(run_args(tmp, tmp.file("dae"), {"--model", "dae", "--sizes", "784,8", "--epochs", "2", "--noise",
                                                           "gaussian", "--noise-schedule", "linear"})));
  check_refusal(ae_train(run_args(tmp, tmp.file("mask"), {"--model", "dae", "--noise-schedule", "linear"})), "ae-train",
                {"--noise-schedule"});
}

TEST_CASE("a classifier head (--classes) on ae, dae, cae, sparse and deep: unsupervised, then the encoder and the head on the labels",
          "[variants]") {
  TempDir tmp;
  write_dataset(tmp.file("data"), 300, 100);
  const std::vector<std::vector<std::string>> variants = {
      {"--model", "ae", "--sizes", "784,16"},
      {"--model", "cae", "--sizes", "784,16"},
      {"--model", "dae", "--sizes", "784,16"},
      {"--model", "sparse", "--sizes", "784,16"},
      {"--model", "deep", "--sizes", "784,32,8", "--optimiser", "adam", "--lr", "0.01"},
  };
  for (size_t v = 0; v < variants.size(); ++v) {
    const std::string out = tmp.file("run" + std::to_string(v));
    std::vector<std::string> args = run_args(tmp, out, variants[v]);
    args.insert(args.end(), {"--classes", "10", "--epochs", "3", "--batch", "20"});
    const ToolResult r = ae_train(args);
    INFO(r.command);
    check_succeeded(r);
    const json metrics = read_json(out + "/metrics.json");
    REQUIRE(metrics["epochs"].size() == 6);  // 3 epochs a phase
    CHECK(metrics["epochs"][2]["phase"] == "train");
    CHECK(metrics["epochs"][3]["phase"] == "classify");
    // The ten bar positions are easy to tell apart once the encoder is tuned: far below chance (0.9).
    REQUIRE(metrics.contains("test_error"));
    INFO("test error " << metrics["test_error"].get<double>());
    CHECK(metrics["test_error"].get<double>() < 0.25);
    // The classify phase's objective is the cross-entropy, and it falls.
    CHECK(metrics["epochs"][5]["test_loss"].get<double>() < metrics["epochs"][3]["test_loss"].get<double>());
    const SafetensorsHeader h = parse_safetensors(read_file(out + "/checkpoint.safetensors"));
    CHECK(h.header["head.weight"]["shape"] == json({10, variants[v][3] == "784,16" ? 16 : 8}));
    CHECK(h.header.contains("head.bias"));
    // ae-eval rebuilds the model with its head from the checkpoint.
    check_succeeded(ae_eval({out, "--data", tmp.file("data"), "--threads", "1", "--probe-epochs", "0"}));
  }
  // The other models have no head to fine-tune.
  check_refusal(ae_train(run_args(tmp, tmp.file("vae"), {"--model", "vae", "--classes", "10"})), "ae-train", {"--classes"});
  // Two phases of --epochs each: resumed only with the saved count.
  check_refusal(ae_train({"--resume", "--out", tmp.file("run0"), "--data", tmp.file("data"), "--epochs", "4"}), "ae-train",
                {"--epochs 4"});
}

TEST_CASE("a classifier head: the unsupervised phase leaves the head alone, the classify phase the decoder") {
  std::vector<float> images(60 * 16);
  std::vector<uint8_t> labels(60);
  for (int i = 0; i < 60; ++i) {
    labels[size_t(i)] = uint8_t(i % 3);
    for (int j = 0; j < 16; ++j) images[size_t(i * 16 + j)] = (j / 5 == i % 3) ? 0.9f : 0.1f * float((i + j) % 3);
  }
  const models::DataView data{images.data(), 60, 16, labels.data()};
  for (const char* kind : {"ae", "cae", "deep"}) {
    INFO(kind);
    models::ModelConfig mc;
    mc.kind = kind;
    mc.sizes = std::string(kind) == "deep" ? std::vector<int>{16, 8, 4} : std::vector<int>{16, 4};
    mc.classes = 3;
    auto model = models::make_model(mc, Device::cpu);
    REQUIRE(model->phases().size() == 2);
    CHECK(model->phases()[1].uses_labels);
    models::TrainConfig tc;
    tc.epochs = 2;
    tc.batch_size = 10;
    tc.optim.kind = "adam";
    tc.optim.lr = 0.01;
    models::Trainer trainer(*model, tc);
    ParamStore& p = model->params();
    auto snapshot = [&](const std::string& prefix) {
      std::vector<float> all;
      for (int i = 0; i < p.count(); ++i)
        if (p.name(i).rfind(prefix, 0) == 0) {
          const HostTensor t = p.read(i);
          for (int64_t k = 0; k < t.numel(); ++k) all.push_back(float(t.at(k)));
        }
      REQUIRE(!all.empty());
      return all;
    };
    const std::string decoder = std::string(kind) == "deep" ? "decoder" : "decoder.";
    const std::string encoder = std::string(kind) == "deep" ? "encoder" : "encoder.";
    const std::vector<float> head0 = snapshot("head."), encoder0 = snapshot(encoder);
    trainer.run_epoch(data, data);
    trainer.run_epoch(data, data);
    CHECK(snapshot("head.") == head0);
    CHECK(snapshot(encoder) != encoder0);
    const std::vector<float> decoder1 = snapshot(decoder), encoder1 = snapshot(encoder);
    const models::EpochReport r = trainer.run_epoch(data, data);
    CHECK(r.phase_name == "classify");
    CHECK(snapshot(decoder) == decoder1);
    CHECK(snapshot("head.") != head0);
    CHECK(snapshot(encoder) != encoder1);
    CHECK(std::isfinite(r.test.error));
  }
}
