// The measurement rounds of one row: ours, the GEMM floor, the peer, alternately.
#include "tools/aebench/bench_row.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include <fmt/format.h>

#include "graph/aegraph.h"
#include "tools/aebench/gemm_floor.h"
#include "tools/aebench/stats.h"
#include "tools/aebench/torch_peer.h"
#include "tools/aebench/training_step.h"

namespace ag::bench {

namespace {

using clock = std::chrono::steady_clock;

// A pause before each side's turn, so that the other side's worker threads (OpenBLAS and OpenMP
// spin a while after their last job before they sleep) do not steal a core from this one.
void settle() { std::this_thread::sleep_for(std::chrono::milliseconds(200)); }

double ms_between(clock::time_point a, clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Warm-up steps, then `steps` timed ones. On CUDA each step waits for the device, so a step's
// time is its real duration and the host never overwrites a batch still being uploaded.
double timed_round(TrainingStep& step, BatchOrder& order, const models::DataView& data, const RunSettings& run,
                   RowResult& row) {
  const bool wait_each = step.device() == Device::cuda;
  for (int i = 0; i < run.warmup; ++i) {
    step.gather(data, order.next());
    step.run();
    if (wait_each) step.synchronize();
  }
  step.synchronize();
  Backend& b = backend(step.device());
  const BackendCounts before = b.counts();
  const auto start = clock::now();
  for (int i = 0; i < run.steps; ++i) {
    const auto t0 = clock::now();
    step.gather(data, order.next());
    const auto t1 = clock::now();
    step.run();
    if (wait_each) step.synchronize();
    const auto t2 = clock::now();
    row.gather_ms.push_back(ms_between(t0, t1));
    row.step_ms.push_back(ms_between(t0, t2));
  }
  step.synchronize();
  const double seconds = ms_between(start, clock::now()) / 1000.0;
  BackendCounts done = b.counts() - before;
  if (wait_each) done.stream_syncs -= run.steps + 1;  // ours, above (the CPU's synchronize counts none)
  row.step_counts += done;
  row.counted_steps += run.steps;
  return double(run.steps) * double(step.batch()) / seconds;
}

std::unique_ptr<TorchPeer> start_peer(const RowSpec& spec, const std::string& phase, const BenchData& data,
                                      const RunSettings& run, RowResult& row) {
  PeerSetup s;
  s.python = run.python;
  s.script = run.peer_script;
  s.model = spec.model;
  s.phase = spec.model == "sae" ? phase : "";
  s.device = to_string(spec.device);
  s.compile = run.peer == "torch-compile";
  s.batch = spec.batch;
  s.steps = run.steps;
  s.warmup = run.warmup;
  s.data_dir = data.dir;
  s.synthetic_rows = data.n;
  s.seed = run.seed;
  auto peer = std::make_unique<TorchPeer>(s);
  if (!peer->ready()) {
    row.peer_skipped = peer->reason();
    return nullptr;
  }
  row.peer_info = peer->info();
  row.peer_threads = {spec.threads};
  const int peer_default = peer->info().value("default_threads", spec.threads);
  if (peer_default != spec.threads && peer_default > 0) row.peer_threads.push_back(peer_default);
  row.peer_samples_per_sec.assign(row.peer_threads.size(), {});
  row.peer_blas_threads.assign(row.peer_threads.size(), 0);
  return peer;
}

}  // namespace

RowResult measure_row(const RowSpec& spec, const BenchData& data, const RunSettings& run) {
  RowResult row;
  if (spec.device == Device::cuda) row.step_counts.device_bytes_used = 0;  // summed over the rounds (-1 on the CPU)
  row.spec = spec;
  row.peer = run.peer;
  if (spec.device == Device::cuda) {
    try {
      backend(Device::cuda);
    } catch (const Error& e) {
      row.skipped = e.what();
      return row;
    }
  }
  if (spec.batch > data.n) {
    row.skipped = fmt::format("batch {} is larger than the {} examples of the data", spec.batch, data.n);
    return row;
  }
  set_num_threads(spec.threads);
  models::ModelConfig config;
  config.kind = spec.model;
  config.seed = run.seed;
  TrainingStep step(config, tutorial_optimiser(spec.model), spec.device, spec.batch, spec.phase);
  row.phase = step.phase_name();
  const std::vector<MatmulShape> matmuls = row.gemms = plan_matmuls(step.plan());
  row.matmuls = int(matmuls.size());
  row.gemm_flops = total_flops(matmuls);
  row.arena_bytes = step.plan().arena_bytes;
  std::unique_ptr<GemmFloor> floor;
  if (run.floor) floor = std::make_unique<GemmFloor>(matmuls, spec.device, run.seed);
  BatchOrder order(data.n, spec.batch, run.seed);
  const models::DataView view = data.view();

  std::unique_ptr<TorchPeer> peer;
  if (!run.peer.empty()) peer = start_peer(spec, row.phase, data, run, row);

  for (int round = 0; round < run.repeats; ++round) {
    set_num_threads(spec.threads);
    settle();
    row.samples_per_sec.push_back(timed_round(step, order, view, run, row));
    if (floor) {
      settle();
      row.gemm_ms.push_back(floor->measure_ms(run.steps));
      double sum = 0;
      for (double ms : row.gemm_ms.back()) sum += ms;
      row.floor_ms.push_back(sum);
    }
    if (!peer) continue;
    for (size_t k = 0; k < row.peer_threads.size(); ++k) {
      settle();
      try {
        const nlohmann::json rep = peer->run(row.peer_threads[k]);
        row.peer_samples_per_sec[k].push_back(rep.at("samples_per_sec").get<double>());
        row.peer_blas_threads[k] = rep.value("blas_threads", 0);
      } catch (const Error& e) {
        row.peer_skipped = e.what();
        peer.reset();
        break;
      }
    }
  }
  row.loss = step.loss();

  if (!row.peer_samples_per_sec.empty() && row.peer_skipped.empty()) {
    double best = -1;
    for (size_t k = 0; k < row.peer_samples_per_sec.size(); ++k) {
      const double m = median(row.peer_samples_per_sec[k]);
      if (m > best) {
        best = m;
        row.peer_best = int(k);
      }
    }
    const std::vector<double>& theirs = row.peer_samples_per_sec[size_t(row.peer_best)];
    for (size_t r = 0; r < row.samples_per_sec.size() && r < theirs.size(); ++r)
      row.ratio.push_back(row.samples_per_sec[r] / theirs[r]);
  }
  return row;
}

}  // namespace ag::bench
