// The live progress bar and the per-epoch lines of ae-train.
#include "tools/train/progress.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace ag::tools {
namespace {

std::string rate(double samples_per_s) {
  return samples_per_s >= 1e4 ? fmt::format("{:.1f}k", samples_per_s / 1e3) : fmt::format("{:.0f}", samples_per_s);
}

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) return fmt::format("{:.0f}s", seconds);
  return fmt::format("{}m{:02}s", int(seconds) / 60, int(seconds) % 60);
}

}  // namespace

Progress::Progress(std::FILE* out, bool live, int epochs, std::vector<std::string> phase_names, int batch_size)
    : out_(out), live_(live), epochs_(epochs), phase_names_(std::move(phase_names)), batch_size_(batch_size) {}

std::string Progress::epoch_label(int phase, int epoch) const {
  std::string label = fmt::format("epoch {}/{}", epoch + 1, epochs_);
  const int phases = int(phase_names_.size());
  if (phases > 1 && phase < phases)
    label = fmt::format("[{} {}/{}] {}", phase_names_[size_t(phase)], phase + 1, phases, label);
  return label;
}

void Progress::clear_bar() {
  if (bar_width_ == 0) return;
  fmt::print(out_, "\r{:{}}\r", "", bar_width_);
  bar_width_ = 0;
}

void Progress::step(const models::StepInfo& info) {
  if (!live_) return;
  const auto now = std::chrono::steady_clock::now();
  const int64_t key = int64_t(info.phase) * 1'000'000 + info.epoch;
  if (key != epoch_key_) {
    epoch_key_ = key;
    epoch_start_ = now;
    last_draw_ = now - std::chrono::seconds(1);
    loss_sum_ = 0;
    loss_steps_ = 0;
  }
  loss_sum_ += info.loss;
  ++loss_steps_;
  const bool last = info.batch + 1 == info.batches;
  // The clock starts at the epoch's first step, so rates need a second one.
  if (!last && (info.batch == 0 || now - last_draw_ < std::chrono::milliseconds(100))) return;
  last_draw_ = now;

  const double done = double(info.batch + 1) / double(std::max<int64_t>(info.batches, 1));
  const double elapsed = std::chrono::duration<double>(now - epoch_start_).count();
  // Steps since the first one, over the time since it; batches are equal but for the last, so
  // steps times the batch size is close enough for a bar.
  const double steps_per_s = elapsed > 0 ? double(info.batch) / elapsed : 0;
  const double left = steps_per_s > 0 ? double(info.batches - info.batch - 1) / steps_per_s : NAN;
  constexpr int width = 24;
  const int filled = int(done * width);
  std::string bar = std::string(size_t(filled), '#') + std::string(size_t(width - filled), '-');
  std::string line = fmt::format("{} [{}] {:3.0f}%  loss {:.4f}  {} samples/s  {} left",
                                 epoch_label(info.phase, info.epoch), bar, 100 * done, loss_sum_ / double(loss_steps_),
                                 rate(steps_per_s * batch_size_), duration(left));
  const int shown = int(line.size());
  fmt::print(out_, "\r{:<{}}", line, std::max(shown, bar_width_));
  bar_width_ = std::max(shown, bar_width_);
  std::fflush(out_);
}

void Progress::epoch(const models::EpochReport& r) {
  clear_bar();
  std::string line = fmt::format("{}  train loss {:.5f}", epoch_label(r.phase, r.epoch), r.train_loss);
  if (r.test.n > 0) line += fmt::format("  test loss {:.5f}  test bce {:.5f}", r.test.loss, r.test.bce);
  for (const models::EvalReport::Extra& e : r.test.extra) line += fmt::format("  test {} {:.5f}", e.name, e.value);
  if (std::isfinite(r.test.error)) line += fmt::format("  test error {:.2f}%", 100 * r.test.error);
  line += fmt::format("  {} samples/s  {:.1f}s", rate(r.samples_per_s), r.seconds);
  fmt::print(out_, "{}\n", line);
  std::fflush(out_);
}

void Progress::message(const std::string& line) {
  clear_bar();
  fmt::print(out_, "{}\n", line);
  std::fflush(out_);
}

}  // namespace ag::tools
