// The tools' parts in-process, on inputs whose answers are known exactly: PCA on data lying
// in a known subspace, the linear probe on separable clusters, checkpoint tensor names, the
// settings' JSON round trip, and the progress output on a terminal and in a log.
#include <cmath>
#include <cstdio>

#include <catch2/catch.hpp>

#include "tools/train/checkpoint.h"
#include "tools/train/linear_probe.h"
#include "tools/train/pca.h"
#include "tools/train/progress.h"
#include "tools/train/run_settings.h"

using namespace ag;
using namespace ag::tools;

namespace {

// Points m + 3a u1 + 2b u2 + c u3 for every sign pattern (a, b, c) in {-1, 1}^3, with
// orthonormal u1, u2, u3 in R^10: covariance eigenvalues 9, 4, 1 and then zeros.
std::vector<float> subspace_points(int repeats) {
  const int dim = 10;
  const double r = 1 / std::sqrt(2.0);
  std::vector<float> points;
  for (int k = 0; k < repeats; ++k)
    for (int s = 0; s < 8; ++s) {
      const double a = s & 1 ? 1 : -1, b = s & 2 ? 1 : -1, c = s & 4 ? 1 : -1;
      for (int j = 0; j < dim; ++j) {
        double u1 = j == 0 || j == 1 ? r : 0, u2 = j == 0 ? r : j == 1 ? -r : 0, u3 = j == 2 ? 1 : 0;
        points.push_back(float(0.5 + 0.01 * j + 3 * a * u1 + 2 * b * u2 + c * u3));
      }
    }
  return points;
}

std::string read_all(std::FILE* f) {
  std::rewind(f);
  std::string text;
  for (int ch; (ch = std::fgetc(f)) != EOF;) text += char(ch);
  return text;
}

}  // namespace

TEST_CASE("PCA finds the variances of data in a known subspace and its exact reconstruction error") {
  const std::vector<float> x = subspace_points(4);
  const int64_t n = 32;
  Pca full = fit_pca(x.data(), n, 10, 3);
  REQUIRE(full.variances.size() == 3);
  CHECK(full.variances[0] == Approx(9).margin(1e-9));
  CHECK(full.variances[1] == Approx(4).margin(1e-9));
  CHECK(full.variances[2] == Approx(1).margin(1e-9));
  CHECK(full.mean[3] == Approx(0.53).margin(1e-6));
  CHECK(pca_squared_error(full, x.data(), n) == Approx(0).margin(1e-9));
  // Two components drop the third direction: exactly c^2 = 1 per image.
  CHECK(pca_squared_error(fit_pca(x.data(), n, 10, 2), x.data(), n) == Approx(1).margin(1e-6));
  // One component's code is the coordinate along u1 (up to its sign): +-3.
  const std::vector<float> codes = pca_codes(fit_pca(x.data(), n, 10, 1), x.data(), n);
  for (float c : codes) CHECK(std::abs(c) == Approx(3).margin(1e-5));
  CHECK_THROWS_WITH(fit_pca(x.data(), n, 10, 11), Catch::Contains("11 components"));
}

TEST_CASE("the linear probe separates separable classes") {
  // Three clusters in 2-D, far apart relative to their spread.
  std::vector<float> codes;
  std::vector<uint8_t> labels;
  for (int i = 0; i < 300; ++i) {
    const int label = i % 3;
    codes.push_back(float(10 * label + (i % 7) * 0.1));
    codes.push_back(float(-5 * label + (i % 5) * 0.1));
    labels.push_back(uint8_t(label));
  }
  ProbeConfig config;
  config.epochs = 20;
  config.batch = 32;
  const ProbeResult r = linear_probe({codes.data(), labels.data(), 240}, {codes.data() + 480, labels.data() + 240, 60}, 2,
                                     3, config, Device::cpu);
  CHECK(r.train_error == 0);
  CHECK(r.test_error == 0);
}

TEST_CASE("checkpoint tensor names are the parameters' own, with prefixed optimiser and trainer state") {
  CHECK(checkpoint_name("param/encoder.weight") == "encoder.weight");
  CHECK(checkpoint_name("optim/adagrad.sum/encoder.weight") == "optim.adagrad.sum.encoder.weight");
  CHECK(checkpoint_name("optim/adam.exp_avg/block0.decoder.bias") == "optim.adam.exp_avg.block0.decoder.bias");
  CHECK(checkpoint_name("hyper/lr") == "optim.lr");
  CHECK(checkpoint_name("counter/step") == "trainer.step");
  CHECK_THROWS_WITH(checkpoint_name("weights"), Catch::Contains("weights"));
}

TEST_CASE("run settings survive their JSON form") {
  RunSettings run;
  run.model.kind = "dae";
  run.model.sizes = {784, 64};
  run.model.noise = "gaussian";
  run.model.noise_level = 0.25;
  run.model.seed = 7;
  run.model = run.model.resolved();
  run.optim.kind = "sgd";
  run.optim.lr = 0.3;
  run.optim.momentum = 0.9;
  run.batch = 32;
  run.epochs = 3;
  run.seed = 7;
  run.limit = 1000;
  run.optim.grad_clamp = 10;
  const nlohmann::json j = run_json(run);
  const RunSettings back = run_from_json(j, "test");
  CHECK(run_json(back) == j);
  CHECK(back.model.noise == "gaussian");
  CHECK(back.optim.momentum == 0.9);
  CHECK(back.optim.grad_clamp == 10);

  // Checkpoints written before --gaussian-noise and --grad-clamp existed still load, with both off.
  nlohmann::json older = j;
  older["model"].erase("gaussian_noise");
  older["optimiser"].erase("grad_clamp");
  const RunSettings old_run = run_from_json(older, "old.safetensors");
  CHECK(old_run.model.gaussian_noise == 0);
  CHECK(old_run.optim.grad_clamp == 0);

  nlohmann::json broken = j;
  broken["model"].erase("sizes");
  CHECK_THROWS_WITH(run_from_json(broken, "ck.safetensors"), Catch::Contains("ck.safetensors") && Catch::Contains("model.sizes"));
  broken = j;
  broken["batch"] = "many";
  CHECK_THROWS_WITH(run_from_json(broken, "ck.safetensors"), Catch::Contains("batch"));
}

TEST_CASE("progress: a bar redrawn in place on a terminal, one line per epoch in a log") {
  models::StepInfo step;
  step.batches = 4;
  step.loss = 0.5;
  models::EpochReport epoch;
  epoch.phase_name = "train";
  epoch.train_loss = 0.25;
  epoch.test.n = 10;
  epoch.test.loss = 0.3;
  epoch.samples_per_s = 12345;

  std::FILE* terminal = std::tmpfile();
  REQUIRE(terminal);
  Progress live(terminal, true, 5, {"train"}, 150);
  for (step.batch = 0; step.batch < 4; ++step.batch) live.step(step);
  live.epoch(epoch);
  const std::string drawn = read_all(terminal);
  std::fclose(terminal);
  CHECK(drawn.find('\r') != std::string::npos);
  CHECK(drawn.find("epoch 1/5 [") != std::string::npos);
  CHECK(drawn.find("100%") != std::string::npos);
  CHECK(drawn.find("samples/s") != std::string::npos);
  CHECK(drawn.find("left") != std::string::npos);
  CHECK(drawn.find("loss 0.5000") != std::string::npos);

  std::FILE* log = std::tmpfile();
  REQUIRE(log);
  Progress quiet(log, false, 5, {"train"}, 150);
  for (step.batch = 0; step.batch < 4; ++step.batch) quiet.step(step);
  quiet.epoch(epoch);
  const std::string lines = read_all(log);
  std::fclose(log);
  CHECK(lines.find('\r') == std::string::npos);
  CHECK(std::count(lines.begin(), lines.end(), '\n') == 1);
  CHECK(lines.find("epoch 1/5  train loss 0.25000  test loss 0.30000") == 0);
  CHECK(lines.find("12.3k samples/s") != std::string::npos);
}
