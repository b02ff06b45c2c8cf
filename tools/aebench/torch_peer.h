// The client side of bench/peers/torch_peer.py: starts the script for one table row with
// /usr/bin/python3 (or --python), talks to it one JSON line at a time, and asks it for one
// repeat at a time, so aebench can alternate its own repeats with the peer's. The peer runs
// without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE in its environment (see docs/benchmarks.md).
// A peer that cannot run (no torch, no CUDA device, an unmatched model) is not an error: it
// reports why, and the row is shown without a peer.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ag::bench {

// The environment variables both sides of a comparison run without: they select a slower
// OpenBLAS kernel for this CPU than the one OpenBLAS picks itself.
inline const std::vector<std::string>& openblas_override_vars() {
  static const std::vector<std::string> vars = {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"};
  return vars;
}

struct PeerSetup {
  std::string python = "/usr/bin/python3";
  std::string script;          // bench/peers/torch_peer.py
  std::string model, phase;    // aegraph's names
  std::string device = "cpu";
  bool compile = false;        // torch.compile(mode="reduce-overhead") the step (torch >= 2)
  int64_t batch = 150;
  int steps = 100, warmup = 10;
  std::string data_dir;        // "" : synthetic data of synthetic_rows examples
  int64_t synthetic_rows = 60000;
  uint64_t seed = 0;
};

class TorchPeer {
 public:
  explicit TorchPeer(const PeerSetup& setup);  // starts it and waits for its first line
  ~TorchPeer();                                // asks it to quit and reaps it
  TorchPeer(const TorchPeer&) = delete;
  TorchPeer& operator=(const TorchPeer&) = delete;

  bool ready() const { return ready_; }
  const std::string& reason() const { return reason_; }  // why it is not ready
  const nlohmann::json& info() const { return info_; }   // its "ready" line

  // One repeat at torch.set_num_threads(threads): the peer's "rep" line. Throws ag::Error
  // (and the peer is no longer ready) when it fails or exits.
  nlohmann::json run(int threads);

 private:
  nlohmann::json read_line();  // the next JSON line; {"event": "error"} at its end
  void stop();

  pid_t pid_ = -1;
  FILE* to_ = nullptr;
  FILE* from_ = nullptr;
  bool ready_ = false;
  std::string reason_;
  nlohmann::json info_;
};

}  // namespace ag::bench
