// Formatting a row: medians over rounds for throughput and the floor, percentiles over every
// timed step for step times, achieved GEMM rate = the step's matmul FLOPs / median step time.
#include "tools/aebench/report.h"

#include <cblas.h>

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "tools/aebench/stats.h"

namespace ag::bench {

namespace {

struct Summary {
  double sps = NAN, sps_min = NAN, sps_max = NAN, p50 = NAN, p90 = NAN, gather = NAN;
  double floor = NAN, floor_ratio = NAN, gflops = NAN, floor_gflops = NAN;
  double peer_sps = NAN, ratio = NAN;
  int peer_threads = 0, peer_blas_threads = 0;
};

Summary summarize(const RowResult& r) {
  Summary s;
  s.sps = median(r.samples_per_sec);
  s.sps_min = min_of(r.samples_per_sec);
  s.sps_max = max_of(r.samples_per_sec);
  s.p50 = percentile(r.step_ms, 50);
  s.p90 = percentile(r.step_ms, 90);
  s.gather = percentile(r.gather_ms, 50);
  s.gflops = r.gemm_flops / (s.p50 * 1e6);
  if (!r.floor_ms.empty()) {
    s.floor = median(r.floor_ms);
    s.floor_ratio = s.p50 / s.floor;
    s.floor_gflops = r.gemm_flops / (s.floor * 1e6);
  }
  if (r.peer_best >= 0) {
    s.peer_sps = median(r.peer_samples_per_sec[size_t(r.peer_best)]);
    s.peer_threads = r.peer_threads[size_t(r.peer_best)];
    s.peer_blas_threads = r.peer_blas_threads[size_t(r.peer_best)];
    s.ratio = median(r.ratio);
  }
  return s;
}

std::string thousands(double v) {  // 123456.7 -> "123 457"
  if (!std::isfinite(v)) return "-";
  std::string digits = fmt::format("{:.0f}", v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') out += ' ';
    out += digits[i];
  }
  return out;
}

std::string number(double v, int decimals) { return std::isfinite(v) ? fmt::format("{:.{}f}", v, decimals) : "-"; }

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

// The median over rounds of matmul k's time alone.
double gemm_median_ms(const RowResult& r, size_t k) {
  std::vector<double> ms;
  for (const std::vector<double>& round : r.gemm_ms) ms.push_back(round.at(k));
  return median(ms);
}

}  // namespace

std::string table_header(bool with_peer) {
  std::string h = fmt::format("{:<6} {:<7} {:>5} {:>3} {:>9} {:>19} {:>15} {:>6} {:>7} {:>8} {:>6} {:>9}", "model",
                              "backend", "batch", "thr", "samples/s", "[min .. max]", "step p50/p90 ms",
                              "gather", "GFLOP/s", "floor ms", "/floor", "arena KiB");
  if (with_peer) h += fmt::format("  {:>12} {:>5} {:>6}", "torch samp/s", "thr", "ratio");
  return h;
}

std::string table_line(const RowResult& r, bool with_peer) {
  const std::string head = fmt::format("{:<6} {:<7} {:>5} {:>3}", r.spec.model, to_string(r.spec.device), r.spec.batch,
                                       r.spec.threads);
  if (!r.skipped.empty()) return head + "  skipped: " + r.skipped;
  const Summary s = summarize(r);
  std::string line = fmt::format("{} {:>9} {:>19} {:>15} {:>6} {:>7} {:>8} {:>6} {:>9}", head, thousands(s.sps),
                                 fmt::format("[{} .. {}]", thousands(s.sps_min), thousands(s.sps_max)),
                                 fmt::format("{} / {}", number(s.p50, 3), number(s.p90, 3)), number(s.gather, 3),
                                 number(s.gflops, 1), number(s.floor, 3),
                                 std::isfinite(s.floor_ratio) ? fmt::format("{:.2f}x", s.floor_ratio) : "-",
                                 thousands(double(r.arena_bytes) / 1024.0));
  if (with_peer) {
    if (r.peer_best >= 0)
      line += fmt::format("  {:>12} {:>5} {:>5.2f}x", thousands(s.peer_sps),
                          fmt::format("{}/{}", s.peer_threads, s.peer_blas_threads), s.ratio);
    else line += "  peer skipped: " + r.peer_skipped;
  }
  if (r.spec.model == "sae") line += fmt::format("  [phase {}]", r.phase);
  if (!std::isfinite(r.loss)) line += fmt::format("  (loss {}: the step is broken)", r.loss);
  return line;
}


std::string gemm_lines(const RowResult& r) {
  std::string out;
  if (r.gemm_ms.empty()) return out;
  for (size_t k = 0; k < r.gemms.size(); ++k) {
    const double ms = gemm_median_ms(r, k);
    out += fmt::format("    gemm {:>2}  {:<34} {:>8.2f} MFLOP {:>8.3f} ms {:>7.1f} GFLOP/s\n", k, r.gemms[k].str(),
                       r.gemms[k].flops() * 1e-6, ms, r.gemms[k].flops() / (ms * 1e6));
  }
  return out;
}

nlohmann::json row_json(const RowResult& r, const RunSettings& run, const std::string& data) {
  nlohmann::json j = {{"model", r.spec.model},   {"backend", to_string(r.spec.device)}, {"batch", r.spec.batch},
                      {"threads", r.spec.threads}, {"steps", run.steps},               {"warmup", run.warmup},
                      {"repeats", run.repeats},    {"data", data},
                      {"openblas_core", openblas_get_corename()}};
  if (const char* core = std::getenv("OPENBLAS_CORETYPE")) j["openblas_coretype_env"] = core;
  if (!r.skipped.empty()) {
    j["skipped"] = r.skipped;
    return j;
  }
  const Summary s = summarize(r);
  j["phase"] = r.phase;
  j["samples_per_sec"] = finite_or_null(s.sps);
  j["samples_per_sec_min"] = finite_or_null(s.sps_min);
  j["samples_per_sec_max"] = finite_or_null(s.sps_max);
  j["samples_per_sec_rounds"] = r.samples_per_sec;
  j["step_ms_p50"] = finite_or_null(s.p50);
  j["step_ms_p90"] = finite_or_null(s.p90);
  j["gather_ms_p50"] = finite_or_null(s.gather);
  j["matmuls"] = r.matmuls;
  j["gemm_flops_per_step"] = r.gemm_flops;
  j["gemm_gflops"] = finite_or_null(s.gflops);
  j["gemm_floor_ms"] = finite_or_null(s.floor);
  j["gemm_floor_gflops"] = finite_or_null(s.floor_gflops);
  j["floor_ratio"] = finite_or_null(s.floor_ratio);
  j["arena_bytes"] = r.arena_bytes;
  if (r.counted_steps > 0) {  // what the backend did per timed step (bench_row.h)
    const BackendCounts& c = r.step_counts;
    const double n = double(r.counted_steps);
    j["per_step"] = {{"allocations", double(c.allocations) / n},   {"stream_syncs", double(c.stream_syncs) / n},
                     {"upload_waits", double(c.upload_waits) / n}, {"eager_runs", double(c.eager_runs) / n},
                     {"captures", double(c.captures) / n},         {"graph_launches", double(c.graph_launches) / n}};
    if (c.device_bytes_used != -1) j["device_bytes_change"] = c.device_bytes_used;
  }
  if (!r.gemm_ms.empty()) {
    nlohmann::json gemms = nlohmann::json::array();
    for (size_t k = 0; k < r.gemms.size(); ++k) {
      const MatmulShape& g = r.gemms[k];
      gemms.push_back({{"m", g.m}, {"n", g.n}, {"k", g.k}, {"transpose_a", g.transpose_a},
                       {"transpose_b", g.transpose_b}, {"bias", g.bias}, {"ms", finite_or_null(gemm_median_ms(r, k))}});
    }
    j["gemms"] = gemms;
  }
  j["loss"] = finite_or_null(r.loss);
  if (r.peer.empty()) return j;
  j["peer"] = r.peer;
  if (r.peer_best < 0) {
    j["peer_skipped"] = r.peer_skipped;
    return j;
  }
  j["peer_samples_per_sec"] = s.peer_sps;
  j["peer_threads"] = s.peer_threads;
  j["peer_blas_threads"] = s.peer_blas_threads;
  nlohmann::json settings = nlohmann::json::object();
  for (size_t k = 0; k < r.peer_threads.size(); ++k)
    settings[std::to_string(r.peer_threads[k])] = r.peer_samples_per_sec[k];
  j["peer_samples_per_sec_rounds_by_threads"] = settings;
  j["peer_default_threads"] = r.peer_info.value("default_threads", 0);
  j["peer_version"] = r.peer_info.value("torch", "");
  j["peer_device"] = r.peer_info.value("device", "");
  j["peer_compile"] = r.peer_info.value("compile", "eager");
  j["peer_openblas_core"] = r.peer_info.value("openblas_core", "");
  j["peer_malloc"] = r.peer_info.value("malloc", "");
  j["ratio"] = s.ratio;
  j["ratio_rounds"] = r.ratio;
  return j;
}

}  // namespace ag::bench
