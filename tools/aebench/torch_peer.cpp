// Spawning the Python peer with pipes on its stdin and stdout (posix_spawn: no shell, so paths
// need no quoting) and aebench's own environment: both sides run with the same OpenBLAS
// settings (main.cpp unsets the overrides for both, unless --openblas-env default).
#include "tools/aebench/torch_peer.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "ops/op.h"

extern char** environ;

namespace ag::bench {

namespace {

std::vector<std::string> peer_arguments(const PeerSetup& s) {
  std::vector<std::string> args = {s.python, s.script, "--model", s.model, "--device", s.device,
                                   "--batch", std::to_string(s.batch), "--steps", std::to_string(s.steps),
                                   "--warmup", std::to_string(s.warmup), "--seed", std::to_string(s.seed)};
  if (!s.phase.empty()) args.insert(args.end(), {"--phase", s.phase});
  if (s.compile) args.push_back("--compile");
  if (!s.data_dir.empty()) args.insert(args.end(), {"--data", s.data_dir});
  else args.insert(args.end(), {"--synthetic-rows", std::to_string(s.synthetic_rows)});
  return args;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

TorchPeer::TorchPeer(const PeerSetup& setup) {
  if (access(setup.python.c_str(), X_OK) != 0) {
    reason_ = fmt::format("{} is not an executable: {}", setup.python, std::strerror(errno));
    return;
  }
  if (access(setup.script.c_str(), R_OK) != 0) {
    reason_ = fmt::format("peer script {}: {}", setup.script, std::strerror(errno));
    return;
  }
  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0) throw Error(fmt::format("aebench: pipe: {}", std::strerror(errno)));
  if (pipe2(from_child, O_CLOEXEC) != 0) {
    close(to_child[0]);
    close(to_child[1]);
    throw Error(fmt::format("aebench: pipe: {}", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_child[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, from_child[1], STDOUT_FILENO);
  std::vector<std::string> args = peer_arguments(setup);
  std::vector<char*> argv = c_strings(args);
  const int rc = posix_spawn(&pid_, setup.python.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(to_child[0]);
  close(from_child[1]);
  if (rc != 0) {
    close(to_child[1]);
    close(from_child[0]);
    pid_ = -1;
    reason_ = fmt::format("cannot start {}: {}", setup.python, std::strerror(rc));
    return;
  }
  to_ = fdopen(to_child[1], "w");
  from_ = fdopen(from_child[0], "r");
  if (!to_ || !from_) {
    reason_ = "fdopen failed";
    stop();
    return;
  }
  info_ = read_line();
  if (info_.value("event", "") == "ready") {
    ready_ = true;
  } else {
    reason_ = info_.value("reason", "the peer did not say why");
    stop();
  }
}

TorchPeer::~TorchPeer() { stop(); }

void TorchPeer::stop() {
  ready_ = false;
  if (to_) {
    std::fputs("quit\n", to_);
    std::fclose(to_);  // end of input also stops it
    to_ = nullptr;
  }
  if (from_) {
    std::fclose(from_);
    from_ = nullptr;
  }
  if (pid_ > 0) {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
}

nlohmann::json TorchPeer::read_line() {
  char* line = nullptr;
  size_t capacity = 0;
  nlohmann::json out = {{"event", "error"}, {"reason", "the peer exited without answering (see its messages above)"}};
  while (getline(&line, &capacity, from_) >= 0) {
    if (line[0] != '{') continue;  // not ours: stray output of a library
    nlohmann::json parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object()) {
      out = std::move(parsed);
      break;
    }
  }
  std::free(line);
  return out;
}

nlohmann::json TorchPeer::run(int threads) {
  if (!ready_) throw Error(fmt::format("torch peer: not running ({})", reason_));
  if (std::fprintf(to_, "run %d\n", threads) < 0 || std::fflush(to_) != 0) {
    reason_ = "the peer closed its input";
    stop();
    throw Error("torch peer: " + reason_);
  }
  nlohmann::json rep = read_line();
  if (rep.value("event", "") != "rep" || !rep.contains("samples_per_sec") || !rep["samples_per_sec"].is_number()) {
    reason_ = rep.value("reason", "the peer answered something else than a repeat");
    stop();
    throw Error("torch peer: " + reason_);
  }
  return rep;
}

}  // namespace ag::bench
