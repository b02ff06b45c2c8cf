// How aebench shows a row: one line of the terminal table, and one JSON object for --json
// (the field names docs/benchmarks.md documents). Both are computed from the raw timings of a
// RowResult, so the table and the file always agree.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "tools/aebench/bench_row.h"

namespace ag::bench {

std::string table_header(bool with_peer);
std::string table_line(const RowResult& row, bool with_peer);
// One indented line per matmul of the step: its shape, FLOPs, median time alone and GFLOP/s.
std::string gemm_lines(const RowResult& row);
nlohmann::json row_json(const RowResult& row, const RunSettings& run, const std::string& data);

}  // namespace ag::bench
