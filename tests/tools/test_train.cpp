// ae-train and ae-eval on a tiny generated data set, run as the user runs them: what a run
// leaves in --out (metrics, a loadable safetensors checkpoint, pictures, a report), a resumed
// run matching an uninterrupted one exactly, the VAE's extra pictures, every variant training,
// and ae-eval's report with the PCA comparison, the classifier and the codes CSV.
#include <algorithm>
#include <cmath>
#include <cstring>

#include <catch2/catch.hpp>

#include "tool_fixture.h"

using namespace ag::tools::testing;
using nlohmann::json;

namespace {

constexpr const char* png_signature = "\x89PNG\r\n\x1a\n";

std::vector<std::string> quick_run(const TempDir& tmp, const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--data", tmp.file("data"), "--out", out, "--threads", "2"};
  if (std::find(extra.begin(), extra.end(), "--epochs") == extra.end()) extra.insert(extra.end(), {"--epochs", "1"});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

void check_succeeded(const ToolResult& r) {
  INFO(r.command << "\nstdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.exit_code == 0);
}

void check_png(const std::string& path) {
  INFO(path);
  CHECK(read_file(path).substr(0, 8) == std::string(png_signature, 8));
}

void check_finite(const json& j, const char* key) {
  INFO(key << " in " << j.dump());
  REQUIRE(j.contains(key));
  REQUIRE(j[key].is_number());
  CHECK(std::isfinite(j[key].get<double>()));
}

}  // namespace

TEST_CASE("ae-train leaves metrics, a safetensors checkpoint, pictures and a report") {
  TempDir tmp;
  write_dataset(tmp.file("data"));
  const std::string out = tmp.file("run");
  check_succeeded(ae_train(quick_run(tmp, out, {"--sizes", "784,16", "--epochs", "2"})));

  const json metrics = read_json(out + "/metrics.json");
  for (const char* key : {"test_loss", "test_bce", "test_mse", "train_loss", "samples_per_sec"}) check_finite(metrics, key);
  REQUIRE(metrics["epochs"].size() == 2);
  for (const json& epoch : metrics["epochs"])
    for (const char* key : {"train_loss", "test_loss", "test_bce", "test_mse", "samples_per_sec"}) check_finite(epoch, key);
  CHECK(metrics["test_loss"] == metrics["epochs"][1]["test_loss"]);
  CHECK(metrics["settings"]["model"]["kind"] == "ae");
  CHECK(metrics["settings"]["model"]["sizes"] == json({784, 16}));
  CHECK(metrics["settings"]["optimiser"]["kind"] == "adagrad");  // the tutorial's defaults
  CHECK(metrics["settings"]["optimiser"]["lr"] == 0.01);
  CHECK(metrics["settings"]["batch"] == 150);
  CHECK(metrics["data"]["train"] == 300);
  CHECK(metrics["data"]["test"] == 100);
  // Mean per-pixel BCE of an untrained-ish model sits well inside (0, 1); squared error per
  // image is a sum over 784 pixels.
  CHECK(metrics["test_bce"].get<double>() > 0);
  CHECK(metrics["test_bce"].get<double>() < 1);
  CHECK(metrics["epochs"][1]["train_loss"].get<double>() < metrics["epochs"][0]["train_loss"].get<double>());

  const std::string csv = read_file(out + "/loss.csv");
  CHECK(csv.rfind("phase,epoch,train_loss,test_loss", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);

  check_png(out + "/reconstructions.png");
  check_png(out + "/filters.png");
  const std::string report = read_file(out + "/report.html");
  CHECK(report.find("src=\"reconstructions.png\"") != std::string::npos);
  CHECK(report.find("src=\"filters.png\"") != std::string::npos);
  CHECK(report.find("<svg") != std::string::npos);
  CHECK(report.find("samples.png") == std::string::npos);  // only the VAE samples

  // The checkpoint, read without the io library: names, dtypes, shapes, offsets tiling the data.
  const SafetensorsHeader ck = parse_safetensors(read_file(out + "/checkpoint.safetensors"));
  const json expected_shapes = {{"encoder.weight", {16, 784}}, {"encoder.bias", {16}},
                                {"decoder.weight", {784, 16}}, {"decoder.bias", {784}},
                                {"optim.adagrad.sum.encoder.weight", {16, 784}}, {"optim.lr", json::array()},
                                {"optim.t", json::array()}, {"trainer.step", json::array()}};
  for (const auto& [name, shape] : expected_shapes.items()) {
    INFO(name);
    REQUIRE(ck.header.contains(name));
    CHECK(ck.header[name]["dtype"] == "F32");
    CHECK(ck.header[name]["shape"] == shape);
  }
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (const auto& [name, entry] : ck.header.items()) {
    if (name == "__metadata__") continue;
    uint64_t elements = 1;
    for (const json& d : entry["shape"]) elements *= d.get<uint64_t>();
    const uint64_t begin = entry["data_offsets"][0], end = entry["data_offsets"][1];
    INFO(name);
    CHECK(end - begin == 4 * elements);
    spans.emplace_back(begin, end);
  }
  std::sort(spans.begin(), spans.end());
  uint64_t at = 0;
  for (const auto& [begin, end] : spans) {
    CHECK(begin == at);
    at = end;
  }
  CHECK(at == ck.data_bytes);
  const json& meta = ck.header["__metadata__"];
  CHECK(meta["format"] == "aegraph.checkpoint/1");
  CHECK(json::parse(meta["run"].get<std::string>())["model"]["kind"] == "ae");
  CHECK(json::parse(meta["history"].get<std::string>()).size() == 2);
  // optim.t counts the updates: 2 epochs of ceil(300 / 150) steps.
  const uint64_t t_at = ck.header["optim.t"]["data_offsets"][0];
  float t = 0;
  std::memcpy(&t, ck.data.data() + t_at, 4);
  CHECK(t == 4.0f);
}

TEST_CASE("a resumed run reaches exactly the losses and weights of an uninterrupted one") {
  TempDir tmp;
  write_dataset(tmp.file("data"));
  // The denoising model: its noise depends on the step counter, which must survive the resume;
  // wta with input noise and a gradient clamp: settings that must survive it too.
  const auto model = GENERATE(std::vector<std::string>{"--model", "dae", "--sizes", "784,16", "--batch", "64"},
                              std::vector<std::string>{"--model", "wta", "--sizes", "784,24", "--batch", "64",
                                                       "--gaussian-noise", "0.2", "--grad-clamp", "0.5"});
  auto with = [&](const std::string& out, std::vector<std::string> extra) {
    std::vector<std::string> args = model;
    for (const std::string& a : quick_run(tmp, out, std::move(extra))) args.push_back(a);
    return args;
  };
  check_succeeded(ae_train(with(tmp.file("straight"), {"--epochs", "4"})));
  check_succeeded(ae_train(with(tmp.file("resumed"), {"--epochs", "2"})));
  const ToolResult resumed = ae_train({"--resume", "--out", tmp.file("resumed"), "--data", tmp.file("data"), "--epochs", "4",
                                       "--threads", "2"});
  check_succeeded(resumed);

  const json a = read_json(tmp.file("straight/metrics.json")), b = read_json(tmp.file("resumed/metrics.json"));
  REQUIRE(a["epochs"].size() == 4);
  REQUIRE(b["epochs"].size() == 4);
  for (size_t e = 0; e < 4; ++e)
    for (const char* key : {"train_loss", "test_loss", "test_bce", "test_mse", "step"}) {
      INFO("epoch " << e + 1 << " " << key);
      CHECK(a["epochs"][e][key] == b["epochs"][e][key]);
    }
  CHECK(a["settings"] == b["settings"]);
  // Parameters, optimiser state and counters: the same bytes.
  CHECK(parse_safetensors(read_file(tmp.file("straight/checkpoint.safetensors"))).data ==
        parse_safetensors(read_file(tmp.file("resumed/checkpoint.safetensors"))).data);

  // Resuming a finished run has nothing to do and changes nothing.
  const auto before = snapshot(tmp.file("resumed"));
  const ToolResult again = ae_train({"--resume", "--out", tmp.file("resumed"), "--data", tmp.file("data"), "--threads", "2"});
  check_succeeded(again);
  CHECK(again.out.find("nothing to do") != std::string::npos);
  CHECK(snapshot(tmp.file("resumed")) == before);
}

TEST_CASE("the vae trains with Adam and leaves samples and an interpolation") {
  TempDir tmp;
  write_dataset(tmp.file("data"));
  const std::string out = tmp.file("vae");
  check_succeeded(ae_train(quick_run(tmp, out, {"--model", "vae", "--sizes", "784,32,4"})));
  const json metrics = read_json(out + "/metrics.json");
  CHECK(metrics["settings"]["optimiser"]["kind"] == "adam");
  CHECK(metrics["settings"]["optimiser"]["lr"] == 0.001);
  check_finite(metrics, "test_loss");
  for (const char* picture : {"reconstructions.png", "filters.png", "samples.png", "interpolation.png"}) {
    check_png(out + "/" + picture);
    CHECK(read_file(out + "/report.html").find(std::string("src=\"") + picture + "\"") != std::string::npos);
  }

  // MCMC sampling: chains from the prior, pictured beside the checkpoint, recorded in the JSON.
  const ToolResult r = ae_eval({out, "--data", tmp.file("data"), "--probe-epochs", "0", "--mcmc", "12", "--sample-std",
                                "0.8", "--json", tmp.file("mcmc.json")});
  check_succeeded(r);
  check_png(out + "/samples_mcmc.png");
  const json mcmc = read_json(tmp.file("mcmc.json"))["mcmc"];
  INFO(mcmc.dump());
  CHECK(mcmc["steps"] == 12);
  CHECK(mcmc["sample_std"] == 0.8);
  CHECK(mcmc["rows_show_steps"] == json::array({0, 1, 3, 4, 5, 7, 8, 9, 11, 12}));
  REQUIRE(mcmc["mean_change_per_pixel"].size() == 12);
  for (const json& change : mcmc["mean_change_per_pixel"]) CHECK((change.get<double>() >= 0 && change.get<double>() < 1));
  CHECK(r.out.find("samples_mcmc.png") != std::string::npos);
  // Elsewhere with --mcmc-png; refused for a model without a prior, a bad std, and steps outside 0..10000.
  check_succeeded(ae_eval({out, "--data", tmp.file("data"), "--probe-epochs", "0", "--mcmc", "1", "--mcmc-png", tmp.file("chain.png")}));
  check_png(tmp.file("chain.png"));
  check_refusal(ae_eval({out, "--data", tmp.file("data"), "--mcmc", "2", "--sample-std", "0"}), "ae-eval", {"--sample-std"});
  check_refusal(ae_eval({out, "--data", tmp.file("data"), "--mcmc", "-1"}), "ae-eval", {"--mcmc", "-1"});
  check_refusal(ae_eval({out, "--data", tmp.file("data"), "--mcmc", "10001"}), "ae-eval", {"--mcmc", "10001"});
  const std::string plain = tmp.file("ae");
  check_succeeded(ae_train(quick_run(tmp, plain, {"--sizes", "784,8"})));
  check_refusal(ae_eval({plain, "--data", tmp.file("data"), "--mcmc", "2"}), "ae-eval", {"--mcmc", "'ae'", "no prior"});
}

TEST_CASE("every variant trains an epoch from the command line", "[variants]") {
  TempDir tmp;
  write_dataset(tmp.file("data"), 200, 50);
  const std::vector<std::vector<std::string>> variants = {
      {"--model", "dae", "--sizes", "784,16", "--noise", "salt_pepper", "--noise-level", "0.2"},
      {"--model", "dae", "--sizes", "784,16", "--noise", "affine"},
      {"--model", "cae", "--sizes", "784,16", "--lambda", "0.05"},
      {"--model", "sparse", "--sizes", "784,16", "--rho", "0.1", "--beta", "1"},
      {"--model", "sae", "--sizes", "784,32,8", "--classes", "10"},
      {"--model", "deep", "--sizes", "784,32,16,4", "--tied", "--optimiser", "adam"},
      {"--model", "ae", "--sizes", "784,16", "--loss", "mse", "--optimiser", "sgd", "--momentum", "0.9", "--lr", "0.5"},
      {"--model", "conv"},
      {"--model", "upconv"},
      {"--model", "convdae", "--noise-level", "0.3"},
      {"--model", "deep", "--sizes", "784,32,8", "--gaussian-noise", "0.3", "--grad-clamp", "1"},
      {"--model", "wta", "--sizes", "784,32"},
      {"--model", "seq2seq", "--sizes", "784,8"},
  };
  for (size_t v = 0; v < variants.size(); ++v) {
    const std::string out = tmp.file("run" + std::to_string(v));
    const ToolResult r = ae_train(quick_run(tmp, out, variants[v]));
    check_succeeded(r);
    const json metrics = read_json(out + "/metrics.json");
    INFO(r.command);
    check_finite(metrics, "test_loss");
    check_finite(metrics, "test_bce");
    const std::string kind = variants[v][1];
    check_png(out + "/reconstructions.png");
    // The convolutional models: their first convolution's 3x3 filters; seq2seq has none (its
    // first layer reads one row of the image, not the image).
    if (kind != "seq2seq") check_png(out + "/filters.png");
    const bool noisy = std::find(variants[v].begin(), variants[v].end(), "--gaussian-noise") != variants[v].end();
    if (kind == "dae" || kind == "convdae" || noisy) {  // test images, corrupted copies, reconstructions from them
      check_png(out + "/denoising.png");
      CHECK(read_file(out + "/report.html").find("src=\"denoising.png\"") != std::string::npos);
    }
    if (kind == "seq2seq") {  // the free-running BCE beside the teacher-forced one, everywhere
      check_finite(metrics, "test_bce_free_running");
      CHECK(read_file(out + "/loss.csv").find(",test_bce_free_running\n") != std::string::npos);
      CHECK(read_file(out + "/report.html").find("free-running") != std::string::npos);
      CHECK(r.out.find("free-running") != std::string::npos);
    }
    if (kind == "sae") {
      // Pretraining per block, fine-tuning, then the classifier: 4 phases of one epoch.
      CHECK(metrics["epochs"].size() == 4);
      check_finite(metrics, "test_error");
    }
  }
}

TEST_CASE("ae-eval reports test losses, PCA at the same code size, a linear classifier and the codes") {
  TempDir tmp;
  write_dataset(tmp.file("data"));
  const std::string out = tmp.file("run");
  check_succeeded(ae_train(quick_run(tmp, out, {"--sizes", "784,8", "--epochs", "3", "--batch", "25"})));
  const ToolResult r = ae_eval({out, "--data", tmp.file("data"), "--threads", "2", "--codes", tmp.file("codes.csv"), "--json",
                                tmp.file("eval.json"), "--probe-epochs", "5"});
  check_succeeded(r);
  CHECK(r.out.find("PCA with 8 components") != std::string::npos);
  CHECK(r.out.find("linear classifier test error") != std::string::npos);

  const json eval = read_json(tmp.file("eval.json"));
  const json metrics = read_json(out + "/metrics.json");
  // The same model on the same test set: ae-eval rebuilt it from the checkpoint alone.
  CHECK(eval["test_loss"].get<double>() == Approx(metrics["test_loss"].get<double>()).epsilon(1e-6));
  CHECK(eval["test_mse"].get<double>() == Approx(metrics["test_mse"].get<double>()).epsilon(1e-6));
  CHECK(eval["pca"]["components"] == 8);
  check_finite(eval["pca"], "test_mse");
  CHECK(eval["pca"]["test_mse"].get<double>() > 0);
  // Ten classes that differ by where their bar is: PCA's codes separate them almost perfectly;
  // a barely trained autoencoder's codes still do far better than chance (0.9).
  CHECK(eval["probe"]["pca_test_error"].get<double>() < 0.2);
  CHECK(eval["probe"]["autoencoder_test_error"].get<double>() < 0.8);

  const std::string csv = read_file(tmp.file("codes.csv"));
  CHECK(csv.rfind("index,label,code0,code1,code2,code3,code4,code5,code6,code7\n", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 101);
  CHECK(csv.find("\n7,7,") != std::string::npos);  // image 7 of the test set has label 7
}

TEST_CASE("catvae and aae: batch norm and two optimisers resume exactly; the aae reports how its codes fit the prior",
          "[variants][resume]") {
  TempDir tmp;
  write_dataset(tmp.file("data"), 200, 50);
  for (const std::string kind : {"catvae", "aae"}) {
    INFO(kind);
    const std::vector<std::string> model = {"--model", kind, "--sizes", kind == "aae" ? "784,32,2" : "784,32,20",
                                            "--batch", "50"};
    auto with = [&](const std::string& out, const std::string& epochs) {
      std::vector<std::string> args = model;
      for (const std::string& a : quick_run(tmp, out, {"--epochs", epochs})) args.push_back(a);
      return args;
    };
    const std::string straight = tmp.file(kind + "-straight"), resumed = tmp.file(kind + "-resumed");
    check_succeeded(ae_train(with(straight, "2")));
    check_succeeded(ae_train(with(resumed, "1")));
    check_succeeded(ae_train({"--resume", "--out", resumed, "--data", tmp.file("data"), "--epochs", "2", "--threads", "2"}));
    const json a = read_json(straight + "/metrics.json"), b = read_json(resumed + "/metrics.json");
    CHECK(a["settings"]["optimiser"]["kind"] == "adam");
    for (const char* key : {"train_loss", "test_loss", "test_bce"}) {
      INFO(key);
      check_finite(a, key);
      CHECK(a["epochs"][1][key] == b["epochs"][1][key]);
    }
    // Parameters, batch norm's running statistics, both optimisers' state, the step counter.
    const auto checkpoint = parse_safetensors(read_file(straight + "/checkpoint.safetensors"));
    CHECK(checkpoint.data == parse_safetensors(read_file(resumed + "/checkpoint.safetensors")).data);
    const ToolResult eval = ae_eval({straight, "--data", tmp.file("data"), "--threads", "2", "--json", tmp.file(kind + ".json"),
                                     "--mcmc", "2"});
    check_succeeded(eval);
    check_png(straight + "/samples.png");  // samples from the prior, and MCMC chains from them
    check_png(straight + "/samples_mcmc.png");
    CHECK(read_json(tmp.file(kind + ".json"))["mcmc"]["mean_change_per_pixel"].size() == 2);
    CHECK(read_json(tmp.file(kind + ".json"))["test_loss"].get<double>() ==
          Approx(a["test_loss"].get<double>()).epsilon(1e-6));
    if (kind == "aae") {
      const json fit = a["code_fit"];
      INFO(fit.dump());
      REQUIRE(fit["mean"].size() == 2);
      REQUIRE(fit["std"].size() == 2);
      const double r1 = fit["within_radius_1"].get<double>(), r2 = fit["within_radius_2"].get<double>();
      CHECK((0 <= r1 && r1 <= r2 && r2 <= 1));
      const std::string report = read_file(straight + "/report.html");
      for (const char* picture : {"codes.png", "prior_grid.png", "samples.png"}) {
        check_png(straight + "/" + picture);
        CHECK(report.find(std::string("src=\"") + picture + "\"") != std::string::npos);
      }
      CHECK(report.find("inside radius 2") != std::string::npos);
    }
  }
}
