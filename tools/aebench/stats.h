// Order statistics for timings: medians and percentiles of a sample (by linear interpolation
// between closest ranks, numpy's default), so one slow repeat on a busy machine moves nothing.
#pragma once
#include <vector>

namespace ag::bench {

double percentile(std::vector<double> values, double p);  // p in [0, 100]; NaN when empty
inline double median(const std::vector<double>& values) { return percentile(values, 50); }
double min_of(const std::vector<double>& values);
double max_of(const std::vector<double>& values);

}  // namespace ag::bench
