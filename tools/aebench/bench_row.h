// One row of aebench's table: a model's training step at one (backend, batch, threads),
// measured in `repeats` rounds. Each round runs, one after the other, our warm-up and timed
// steps, the GEMM floor (each matmul of the plan alone) and, with a peer, the peer's warm-up
// and timed steps at our thread count and at its own default. Alternating within a round puts
// both sides under the same background load, which on a shared machine moves a lot; medians
// over the rounds then ignore a round that was disturbed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/backend.h"
#include "graph/tensor.h"
#include "tools/aebench/bench_data.h"
#include "tools/aebench/gemm_floor.h"

namespace ag::bench {

struct RowSpec {
  std::string model;
  std::string phase;         // "" : the model's first phase
  Device device = Device::cpu;
  int64_t batch = 150;
  int threads = 1;
};

struct RunSettings {
  int steps = 100, warmup = 10, repeats = 5;
  bool floor = true;         // measure the GEMM floor
  uint64_t seed = 0;
  std::string peer;          // "", "torch" (eager) or "torch-compile" (torch.compile, reduce-overhead)
  std::string python, peer_script;
};

struct RowResult {
  RowSpec spec;
  std::string phase;             // the phase that ran
  std::string skipped;           // why the row was not measured ("" when it was)
  std::vector<double> samples_per_sec;  // per round
  std::vector<double> step_ms;          // every timed step, gather included
  std::vector<double> gather_ms;        // the gather part of each timed step
  std::vector<double> floor_ms;         // per round: the sum of the plan's GEMMs timed alone
  std::vector<MatmulShape> gemms;       // the plan's matmuls, in execution order
  std::vector<std::vector<double>> gemm_ms;  // per round, per matmul: its median time alone
  double gemm_flops = 0;                // per step
  int matmuls = 0;
  int64_t arena_bytes = 0;
  double loss = 0;                      // the last step's objective (a NaN here flags a broken step)
  // What the backend did in all the timed steps (BackendCounts), less aebench's own waits for
  // the device after each step on CUDA: a captured step should show one graph launch and one
  // upload wait each, and no allocation, stream synchronisation, eager run or capture.
  BackendCounts step_counts;
  int64_t counted_steps = 0;

  // The peer, when asked for.
  std::string peer;                     // "torch" or "torch-compile"
  std::string peer_skipped;             // why it did not run
  nlohmann::json peer_info;             // its "ready" line
  std::vector<int> peer_threads;        // the settings it ran with: ours, then its default
  std::vector<int> peer_blas_threads;   // per setting: OpenBLAS's own thread count (torch does not set it)
  std::vector<std::vector<double>> peer_samples_per_sec;  // per setting, per round
  int peer_best = -1;                   // index of the setting with the best median
  std::vector<double> ratio;            // per round: ours / the peer's best setting
};

// Measures the row on `data`. A backend that is not available, or a batch larger than the data,
// gives a row with `skipped` set; other failures throw ag::Error.
RowResult measure_row(const RowSpec& spec, const BenchData& data, const RunSettings& run);

}  // namespace ag::bench
