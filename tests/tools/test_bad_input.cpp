// Bad input, as a story per kind: broken data sets, bad flags and broken or foreign
// checkpoints. Each is refused with one line naming the file or flag and a non-zero exit,
// never a crash (the sanitizer build runs these too), and the good run already in --out is
// left byte for byte as it was.
#include <algorithm>

#include <catch2/catch.hpp>

#include "tool_fixture.h"

using namespace ag::tools::testing;
using nlohmann::json;

namespace {

struct Case {
  std::string what;
  std::vector<std::string> args;
  std::vector<std::string> names;  // what the message must mention
};

// A good one-epoch run in `out`, on the data in `data`.
void good_run(const std::string& data, const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--data", data, "--out", out, "--epochs", "1", "--threads", "2"};
  if (std::find(extra.begin(), extra.end(), "--sizes") == extra.end()) extra.insert(extra.end(), {"--sizes", "784,8"});
  args.insert(args.end(), extra.begin(), extra.end());
  const ToolResult r = ae_train(args);
  INFO(r.command << "\n" << r.err);
  REQUIRE(r.exit_code == 0);
}

// The same safetensors data under a modified header (padded to 8 bytes like the writer does).
std::string with_header(const SafetensorsHeader& file, const json& header) {
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  std::string out(8, '\0');
  for (int b = 0; b < 8; ++b) out[size_t(b)] = char(uint64_t(text.size()) >> (8 * b));
  return out + text + file.data;
}

}  // namespace

TEST_CASE("broken data sets are refused by name and leave the previous run alone") {
  TempDir tmp;
  const std::string good = tmp.file("good"), out = tmp.file("run");
  write_dataset(good);
  good_run(good, out);
  const auto before = snapshot(out);

  // Each case: the good folder with one file replaced.
  struct DataCase {
    std::string what, file, bytes;
    std::vector<std::string> names;
  };
  const std::string images = idx_images(300, 28, 28);
  std::string corrupted = gzip(idx_images(100, 28, 28));
  for (size_t i = 40; i < 60 && i < corrupted.size(); ++i) corrupted[i] = char(corrupted[i] ^ 0x5a);
  const std::vector<DataCase> cases = {
      {"wrong magic number", "train-images-idx3-ubyte.gz", gzip(idx_images(300, 28, 28, 0x00000802)),
       {"train-images-idx3-ubyte", "magic"}},
      {"truncated IDX data", "train-images-idx3-ubyte.gz", gzip(images.substr(0, images.size() - 1000)),
       {"train-images-idx3-ubyte", "truncated"}},
      {"truncated gzip stream", "train-images-idx3-ubyte.gz", gzip(images).substr(0, 2000),
       {"train-images-idx3-ubyte", "truncated"}},
      {"corrupted gzip stream", "t10k-images-idx3-ubyte.gz", corrupted, {"t10k-images-idx3-ubyte", "gzip"}},
      {"fewer labels than images", "train-labels-idx1-ubyte.gz", gzip(idx_labels(299)), {"train-labels-idx1-ubyte", "299"}},
      {"labels with an image magic", "t10k-labels-idx1-ubyte.gz", gzip(idx_labels(100, 0x00000803)),
       {"t10k-labels-idx1-ubyte", "magic"}},
      {"test images of another size", "t10k-images-idx3-ubyte.gz", gzip(idx_images(100, 20, 20)),
       {"t10k-images-idx3-ubyte", "20x20", "784"}},
      {"an empty file", "train-labels-idx1-ubyte.gz", "", {"train-labels-idx1-ubyte"}},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    INFO(cases[c].what);
    const std::string dir = tmp.file("bad" + std::to_string(c));
    write_dataset(dir);
    write_file(dir + "/" + cases[c].file, cases[c].bytes);
    check_refusal(ae_train({"--data", dir, "--out", out, "--epochs", "1", "--sizes", "784,8"}), "ae-train", cases[c].names);
  }
  {
    INFO("a missing folder");
    check_refusal(ae_train({"--data", tmp.file("nowhere"), "--out", out}), "ae-train", {tmp.file("nowhere")});
  }
  {
    INFO("a missing file");
    const std::string dir = tmp.file("three");
    write_dataset(dir);
    std::filesystem::remove(dir + "/t10k-labels-idx1-ubyte.gz");
    check_refusal(ae_train({"--data", dir, "--out", out}), "ae-train", {dir, "t10k-labels-idx1-ubyte"});
  }
  {
    INFO("ae-eval on data that does not fit the checkpoint's model");
    const std::string dir = tmp.file("small");
    write_dataset(dir, 50, 20, 20, 20);
    check_refusal(ae_eval({out, "--data", dir}), "ae-eval", {"train-images-idx3-ubyte", "400", "784"});
  }
  CHECK(snapshot(out) == before);
}

TEST_CASE("bad flags are refused by name before anything is written") {
  TempDir tmp;
  const std::string data = tmp.file("data"), out = tmp.file("run");
  write_dataset(data);
  good_run(data, out);
  const auto before = snapshot(out);
  write_file(tmp.file("a-file"), "not a folder");

  const std::vector<Case> cases = {
      {"an unknown flag", {"--bogus", "1"}, {"--bogus"}},
      {"a negative learning rate", {"--lr", "-1"}, {"--lr"}},
      {"a zero learning rate", {"--lr", "0"}, {"--lr"}},
      {"batch 0", {"--batch", "0"}, {"--batch"}},
      {"a batch that is not a number", {"--batch", "many"}, {"--batch"}},
      {"an absurd batch", {"--batch", "100000000"}, {"--batch"}},
      {"0 epochs", {"--epochs", "0"}, {"--epochs"}},
      {"an unknown model", {"--model", "gan"}, {"--model"}},
      {"one size", {"--sizes", "784"}, {"--sizes"}},
      {"three sizes for a one-layer model", {"--sizes", "784,128,64"}, {"--sizes", "ae"}},
      {"a zero size", {"--sizes", "784,0"}, {"--sizes"}},
      {"a vae without a hidden layer", {"--model", "vae", "--sizes", "784,20"}, {"--sizes", "vae"}},
      {"sizes for a convolutional model", {"--model", "conv", "--sizes", "784,64"}, {"--sizes", "conv", "fixed"}},
      {"tied weights for a convolutional model", {"--model", "upconv", "--tied"}, {"--tied"}},
      {"--noise for a model without corruption", {"--model", "conv", "--noise", "mask"}, {"--noise", "conv"}},
      {"an input size the data does not have", {"--sizes", "100,10"}, {"--sizes", "100", "784"}},
      {"an unknown activation", {"--activation", "swish"}, {"--activation"}},
      {"an unknown loss", {"--loss", "hinge"}, {"--loss"}},
      {"mse for the vae", {"--model", "vae", "--loss", "mse"}, {"--loss"}},
      {"an unknown optimiser", {"--optimiser", "rmsprop"}, {"--optimiser"}},
      {"momentum without sgd", {"--optimiser", "adam", "--momentum", "0.9"}, {"--momentum"}},
      {"momentum of 1", {"--optimiser", "sgd", "--momentum", "1"}, {"--momentum"}},
      {"noise for a plain autoencoder", {"--noise", "mask"}, {"--noise"}},
      {"an unknown noise", {"--model", "dae", "--noise", "blur"}, {"--noise"}},
      {"a noise level above 1", {"--model", "dae", "--noise-level", "2"}, {"--noise-level"}},
      {"--gaussian-noise for the dae", {"--model", "dae", "--gaussian-noise", "0.5"}, {"--gaussian-noise", "dae"}},
      {"a negative --gaussian-noise", {"--gaussian-noise", "-0.5"}, {"--gaussian-noise"}},
      {"a negative --grad-clamp", {"--grad-clamp", "-1"}, {"--grad-clamp"}},
      {"--resume with another --grad-clamp", {"--resume", "--grad-clamp", "5", "--epochs", "2"}, {"--grad-clamp"}},
      {"a negative lambda", {"--model", "cae", "--lambda", "-0.1"}, {"--lambda"}},
      {"rho outside (0, 1)", {"--model", "sparse", "--rho", "1.5"}, {"--rho"}},
      {"a negative beta", {"--model", "sparse", "--beta", "-1"}, {"--beta"}},
      {"a KL penalty on relu codes", {"--model", "sparse", "--activation", "relu"}, {"--activation", "sparse"}},
      {"tied weights for the vae", {"--model", "vae", "--tied"}, {"--tied"}},
      {"classes for a model without a dense encoder", {"--model", "vae", "--classes", "10"}, {"--classes", "vae"}},
      {"an unknown device", {"--device", "tpu"}, {"--device"}},
      {"negative threads", {"--threads", "-1"}, {"--threads"}},
      {"limit 0", {"--limit", "0"}, {"--limit"}},
      {"--out naming a file", {"--out", tmp.file("a-file")}, {"--out", tmp.file("a-file")}},
      {"--resume with nothing to resume", {"--resume", "--out", tmp.file("empty")}, {"--resume", tmp.file("empty")}},
      {"--resume with another learning rate", {"--resume", "--lr", "0.5", "--epochs", "2"}, {"--lr", "0.01"}},
      {"--resume with other sizes", {"--resume", "--sizes", "784,16", "--epochs", "2"}, {"--sizes"}},
      {"--resume with another model", {"--resume", "--model", "vae", "--epochs", "2"}, {"--model"}},
      {"--resume with fewer epochs than trained", {"--resume", "--epochs", "0"}, {"--epochs"}},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    std::vector<std::string> args = {"--data", data};
    if (std::find(c.args.begin(), c.args.end(), "--out") == c.args.end()) args.insert(args.end(), {"--out", out});
    args.insert(args.end(), c.args.begin(), c.args.end());
    check_refusal(ae_train(args), "ae-train", c.names);
  }
  CHECK(snapshot(out) == before);
  CHECK(!std::filesystem::exists(tmp.file("empty")));

  // ae-eval's own flags.
  check_refusal(ae_eval({out, "--nope"}), "ae-eval", {"--nope"});
  check_refusal(ae_eval({tmp.file("missing.safetensors"), "--data", data}), "ae-eval", {tmp.file("missing.safetensors")});
  check_refusal(ae_eval({out, "--data", data, "--codes", tmp.file("no/such/codes.csv")}), "ae-eval", {"--codes"});
  check_refusal(ae_eval({out, "--data", data, "--probe-epochs", "-2"}), "ae-eval", {"--probe-epochs"});
  check_refusal(ae_eval({}), "ae-eval", {"checkpoint"});
  CHECK(snapshot(out) == before);
}

TEST_CASE("malformed or foreign checkpoints are refused by ae-eval and --resume, and stay as they were") {
  TempDir tmp;
  const std::string data = tmp.file("data"), out = tmp.file("run");
  write_dataset(data);
  good_run(data, out);
  const std::string bytes = read_file(out + "/checkpoint.safetensors");
  const SafetensorsHeader good = parse_safetensors(bytes);

  auto edited = [&](auto&& edit) {
    json header = good.header;
    edit(header);
    return with_header(good, header);
  };
  auto edited_run = [&](auto&& edit) {
    return edited([&](json& header) {
      json run = json::parse(header["__metadata__"]["run"].get<std::string>());
      edit(run);
      header["__metadata__"]["run"] = run.dump();
    });
  };
  std::string huge_length = bytes;
  huge_length[7] = char(0x7f);
  std::string not_json = bytes;
  not_json[8] = '[';
  struct CheckpointCase {
    std::string what, bytes;
    std::vector<std::string> names;
  };
  const std::vector<CheckpointCase> cases = {
      {"a header length past the end", huge_length, {}},
      {"a header that is not JSON", not_json, {}},
      {"a truncated file", bytes.substr(0, bytes.size() - 100), {}},
      {"an empty file", "", {}},
      {"no aegraph metadata", edited([](json& h) { h.erase("__metadata__"); }), {"aegraph checkpoint"}},
      {"a tensor of the wrong shape", edited([](json& h) { h["encoder.weight"]["shape"] = {784, 8}; }), {"encoder.weight"}},
      {"settings of a larger model", edited_run([](json& run) { run["model"]["sizes"] = {784, 16}; }), {"encoder.weight"}},
      {"settings of another kind of model", edited_run([](json& run) { run["model"] = {{"kind", "vae"}}; }), {"model."}},
      {"settings of a vae", edited_run([](json& run) {
         run["model"]["kind"] = "vae";
         run["model"]["sizes"] = {784, 8, 4};
       }), {"encoder0.weight", "missing"}},
      {"settings the models refuse", edited_run([](json& run) { run["model"]["loss"] = "hinge"; }), {"hinge"}},
      {"an optimiser that is not there", edited_run([](json& run) { run["optimiser"]["kind"] = "adam"; }), {}},
      {"settings that are not JSON", edited([](json& h) { h["__metadata__"]["run"] = "{model: ae"; }), {"'run'"}},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    INFO(cases[c].what);
    const std::string dir = tmp.file("ck" + std::to_string(c)), path = dir + "/checkpoint.safetensors";
    std::filesystem::create_directories(dir);
    write_file(path, cases[c].bytes);
    std::vector<std::string> names = cases[c].names;
    names.push_back(path);
    if (cases[c].what != "an optimiser that is not there")  // ae-eval needs no optimiser state
      check_refusal(ae_eval({path, "--data", data, "--probe-epochs", "0"}), "ae-eval", names);
    check_refusal(ae_train({"--resume", "--out", dir, "--data", data, "--epochs", "2"}), "ae-train", names);
    CHECK(snapshot(dir) == std::map<std::string, std::string>{{"checkpoint.safetensors", cases[c].bytes}});
  }

  // The stacked model trains in phases of --epochs each: only the saved count continues it.
  good_run(data, tmp.file("sae"), {"--model", "sae", "--sizes", "784,16,8"});
  check_refusal(ae_train({"--resume", "--out", tmp.file("sae"), "--data", data, "--epochs", "3"}), "ae-train",
                {"--epochs", "sae"});
  // Resuming on other data would not continue the same run.
  const std::string other = tmp.file("other");
  write_dataset(other, 200, 100);
  check_refusal(ae_train({"--resume", "--out", out, "--data", other, "--epochs", "2"}), "ae-train", {"--data", "train"});
}
