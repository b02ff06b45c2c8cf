// aebench: training throughput of aegraph's autoencoders, one table row per (model, backend,
// batch, threads), optionally beside the same workload in PyTorch (--peer torch). What each
// column means and how to run a fair comparison: docs/benchmarks.md.
//
//   aebench --model ae,dae,cae,sae,deep,vae --backend cpu,cuda --batch 150,1024 --threads 1,2
//           --steps 100 --repeats 5 [--data DIR | --synthetic] [--peer torch|torch-compile] [--json FILE]
#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "graph/aegraph.h"
#include "models/model.h"
#include "tools/aebench/bench_data.h"
#include "tools/aebench/bench_row.h"
#include "tools/aebench/report.h"
#include "tools/aebench/torch_peer.h"
#include "tools/io/atomic_file.h"
#include "tools/io/io_error.h"

#ifndef AEBENCH_PEER_DIR
#define AEBENCH_PEER_DIR "bench/peers"
#endif

namespace {

using namespace ag;
using namespace ag::bench;

constexpr const char* reexec_marker = "AEBENCH_REEXECUTED";

// OpenBLAS reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when it is loaded, so the only way to run
// this process without them is to start it again. Returns only when there is nothing to do or
// the exec failed (then the numbers are taken with the overrides, and we say so).
void reexec_without_openblas_overrides(char** argv) {
  std::vector<std::string> present;
  for (const std::string& var : openblas_override_vars())
    if (const char* v = std::getenv(var.c_str())) present.push_back(fmt::format("{}={}", var, v));
  if (present.empty() || std::getenv(reexec_marker)) return;
  fmt::print(stderr, "aebench: restarting without {} (they make OpenBLAS use another CPU's kernels; both sides of "
                     "the comparison run without them)\n", fmt::join(present, " "));
  for (const std::string& var : openblas_override_vars()) unsetenv(var.c_str());
  setenv(reexec_marker, "1", 1);
  execv("/proc/self/exe", argv);
  fmt::print(stderr, "aebench: could not restart ({}); measuring with the overrides in place\n", std::strerror(errno));
}

void check_json_destination(const std::string& path) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir)) throw ag::Error(fmt::format("--json {}: the folder {} does not exist", path, dir.string()));
  if (access(dir.c_str(), W_OK) != 0) throw ag::Error(fmt::format("--json {}: the folder {} is not writable", path, dir.string()));
  if (fs::is_directory(path)) throw ag::Error(fmt::format("--json {}: is a folder", path));
}

// The stacked model's phases depend only on its sizes: a model declared on the CPU (nothing is
// allocated before first use) tells them, before any row has run.
void check_sae_phase(const std::string& phase, const std::vector<std::string>& models) {
  if (std::find(models.begin(), models.end(), "sae") == models.end())
    throw ag::Error("--sae-phase: only the stacked model (--model sae) has phases");
  ag::models::ModelConfig config;
  config.kind = "sae";
  std::string names;
  for (const ag::models::Phase& p : ag::models::make_model(config, ag::Device::cpu)->phases()) {
    if (p.name == phase) return;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  throw ag::Error(fmt::format("--sae-phase: the stacked model has no phase '{}' ({})", phase, names));
}

double load_average() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? load[0] : -1;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a peer that dies must not take us with it: writes fail instead
  CLI::App app{"aebench: training throughput of aegraph's autoencoders, optionally against PyTorch"};
  std::vector<std::string> models = {"ae"}, backends = {"cpu"};
  std::vector<int64_t> batches = {150};
  std::vector<int> threads;
  RunSettings run;
  std::string json_path, data_dir, peer = "none", sae_phase, openblas_env = "unset";
  bool synthetic = false;
  int64_t synthetic_rows = 60000;
  run.python = "/usr/bin/python3";
  run.peer_script = std::string(AEBENCH_PEER_DIR) + "/torch_peer.py";

  app.add_option("--model", models, "models, comma-separated")
      ->delimiter(',')
      ->check(CLI::IsMember(ag::models::model_kinds()))
      ->capture_default_str();
  app.add_option("--backend", backends, "cpu, cuda")->delimiter(',')->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  app.add_option("--batch", batches, "batch sizes")->delimiter(',')->check(CLI::Range(int64_t(1), int64_t(1) << 20))->capture_default_str();
  app.add_option("--threads", threads, "CPU thread counts (default: all cores)")->delimiter(',')->check(CLI::Range(1, 1024));
  app.add_option("--steps", run.steps, "timed steps per round")->check(CLI::Range(1, 10000000))->capture_default_str();
  app.add_option("--warmup", run.warmup, "untimed steps before each round")->check(CLI::Range(0, 10000000))->capture_default_str();
  app.add_option("--repeats", run.repeats, "rounds (medians over them)")->check(CLI::Range(1, 10000))->capture_default_str();
  app.add_option("--json", json_path, "also write one JSON object per row to FILE");
  auto* data_flag = app.add_option("--data", data_dir, "MNIST folder (default: as ae-train finds it)");
  auto* synthetic_flag = app.add_flag("--synthetic", synthetic, "generated images of MNIST's shape, no files");
  data_flag->excludes(synthetic_flag);
  app.add_option("--synthetic-rows", synthetic_rows, "examples of synthetic data")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 24))->capture_default_str();
  app.add_option("--peer", peer,
                 "run the same workload in PyTorch: torch (eager) or torch-compile (the loss under "
                 "torch.compile(mode=\"reduce-overhead\"), the optimiser step compiled; needs torch >= 2)")
      ->check(CLI::IsMember({"none", "torch", "torch-compile"}))
      ->capture_default_str();
  app.add_option("--openblas-env", openblas_env,
                 "with a peer: 'unset' runs both sides without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE "
                 "(OpenBLAS picks its kernels for this CPU), 'default' both with the environment as it is")
      ->check(CLI::IsMember({"unset", "default"}))
      ->capture_default_str();
  app.add_option("--python", run.python, "the Python that has torch")->capture_default_str();
  app.add_option("--peer-script", run.peer_script, "the PyTorch peer")->capture_default_str();
  app.add_option("--sae-phase", sae_phase, "the stacked model's phase to time (pretrain-1, finetune; default: its first)");
  app.add_flag("!--no-floor", run.floor, "skip the GEMM floor measurement");
  bool gemm_detail = false;
  app.add_flag("--gemm-detail", gemm_detail, "list each matmul of the step with its time alone");
  app.add_option("--seed", run.seed, "initialisation, noise, shuffling")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  run.peer = peer == "none" ? "" : peer;
  if (!run.peer.empty() && openblas_env == "unset") {
    reexec_without_openblas_overrides(argv);
  } else if (run.peer.empty()) {
    for (const std::string& var : openblas_override_vars())
      if (const char* v = std::getenv(var.c_str()))
        fmt::print(stderr, "aebench: note: {}={} is set; it changes OpenBLAS's kernels. To compare with PyTorch run "
                           "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE aebench ...` or use --peer torch\n", var, v);
  }

  try {
    if (!json_path.empty()) check_json_destination(json_path);
    if (!sae_phase.empty()) check_sae_phase(sae_phase, models);
    if (threads.empty()) {
      set_num_threads(0);  // all cores
      threads = {num_threads()};
    }
    const BenchData data = synthetic ? synthetic_data(synthetic_rows, 784, run.seed) : mnist_train_data(data_dir);
    fmt::print("aebench: {} steps per round after {} warm-up, {} rounds; data: {}\n", run.steps, run.warmup,
               run.repeats, data.description);
    fmt::print("aebench: OpenBLAS {} (core {}), {} cores, load average {:.2f}\n", openblas_get_config(),
               openblas_get_corename(), std::thread::hardware_concurrency(), load_average());
    if (openblas_get_parallel() != 2)  // 0 sequential, 1 pthreads, 2 OpenMP
      fmt::print(stderr, "aebench: warning: this OpenBLAS is not its OpenMP build (openblas_get_parallel() = {}); "
                         "its thread pool and our OpenMP team will compete for the cores. Install "
                         "libopenblas-openmp-dev and reconfigure (docs/benchmarks.md)\n", openblas_get_parallel());
    const bool with_peer = !run.peer.empty();
    if (with_peer)
      fmt::print("aebench: the peer (PyTorch, {} {}) runs each round at our thread count and at torch's default, "
                 "and is reported at its best of those; its 'thr' column is torch threads / OpenBLAS threads "
                 "(torch.set_num_threads leaves OpenBLAS's own pool alone)\n", run.python, run.peer_script);
    fmt::print("{}\n", table_header(with_peer));

    std::string json_lines;
    bool peer_described = false;
    for (const std::string& model : models)
      for (const std::string& backend_name : backends)
        for (int64_t batch : batches)
          for (int t : threads) {
            RowSpec spec{model, model == "sae" ? sae_phase : "", backend_name == "cuda" ? Device::cuda : Device::cpu,
                         batch, t};
            RowResult row = measure_row(spec, data, run);
            if (with_peer && !peer_described && row.peer_best >= 0) {
              const nlohmann::json& info = row.peer_info;
              fmt::print("peer: torch {} on {} ({}), default threads {}, BLAS {} (OpenBLAS core {}), "
                         "OPENBLAS_CORETYPE {}, malloc {}\n", info.value("torch", "?"), info.value("device", "?"),
                         info.value("compile", "eager"),
                         info.value("default_threads", 0), info.value("blas", "?"), info.value("openblas_core", "?"),
                         info.value("env", nlohmann::json::object()).value("OPENBLAS_CORETYPE", nlohmann::json()).is_null()
                             ? "unset"
                             : "SET",
                         info.value("malloc", "?"));
              peer_described = true;
            }
            fmt::print("{}\n", table_line(row, with_peer));
            if (gemm_detail) fmt::print("{}", gemm_lines(row));
            std::fflush(stdout);
            if (!json_path.empty()) {  // rewritten whole after each row: progress survives, nothing is half-written
              nlohmann::json j = row_json(row, run, data.description);
              j["load_average"] = load_average();
              json_lines += j.dump() + "\n";
              io::write_file_atomic(json_path, json_lines);
            }
          }
    if (with_peer && !peer_described)
      fmt::print("peer: did not run (see the rows' reasons)\n");
    fmt::print("aebench: load average {:.2f} at the end\n", load_average());
    return 0;
  } catch (const std::exception& e) {  // ag::Error, io::IoError, JSON and filesystem errors alike
    fmt::print(stderr, "aebench: {}\n", e.what());
    return 1;
  }
}
