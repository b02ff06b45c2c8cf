// What a training run prints while it runs. On a terminal: a progress bar per epoch (running
// loss, samples/s, time left) redrawn in place with \r, at most ten times a second. In a log
// (stderr not a terminal): nothing per step, one line per epoch.
#pragma once
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "models/trainer.h"

namespace ag::tools {

class Progress {
 public:
  // `epochs` per phase, one phase per name; `live`: draw the bar (pass isatty(fileno(out))).
  Progress(std::FILE* out, bool live, int epochs, std::vector<std::string> phase_names, int batch_size);

  bool live() const { return live_; }
  void step(const models::StepInfo& info);         // hook for Trainer::on_step (live only)
  void epoch(const models::EpochReport& report);   // hook for Trainer::on_epoch
  void message(const std::string& line);           // a line of its own, clearing any bar first

 private:
  std::string epoch_label(int phase, int epoch) const;
  void clear_bar();

  std::FILE* out_;
  bool live_;
  int epochs_;
  std::vector<std::string> phase_names_;
  int batch_size_;
  int bar_width_ = 0;  // characters of the bar on screen, 0 when none is drawn
  // The epoch being drawn: when it started, its running loss, when the bar was last drawn.
  int64_t epoch_key_ = -1;
  std::chrono::steady_clock::time_point epoch_start_, last_draw_;
  double loss_sum_ = 0;
  int64_t loss_steps_ = 0;
};

}  // namespace ag::tools
