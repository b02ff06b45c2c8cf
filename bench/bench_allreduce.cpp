// The sum over the ranks that a data-parallel step pays (docs/scale-out.md), as the step runs it:
// one compiled allreduce_sum of `elements` floats, run `--runs` times on every rank (a fixed
// count, so the ranks stay in step; Google Benchmark's adaptive counts would not). Rank 0
// prints the median time, the algorithm bandwidth (bytes / time) and the bus bandwidth of a
// ring (2 (P - 1) / P x bytes / time), from which the cost model's terms are read.
//   mpirun -np 2 build/bin/aegraph_bench_allreduce 201617 806464
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dist/dist.h"
#include "graph/aegraph.h"

using namespace ag;

int main(int argc, char** argv) {
  dist::Session session(&argc, &argv);
  int runs = 200;
  std::vector<int64_t> sizes;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else sizes.push_back(std::atoll(argv[i]));
  }
  if (sizes.empty()) sizes = {1, 201617, 2837314};  // a scalar; the tutorial's ae and the deep model's parameters
  const int ranks = session.size();
  if (session.root())
    std::printf("%s, %d runs each\n%12s %12s %12s %14s\n", session.describe().c_str(), runs,
                "floats", "median us", "algbw GB/s", "ring busbw GB/s");
  for (int64_t n : sizes) {
    Graph g;
    Value x = input(g, Shape{n}, "x");
    Executor ex(compile({allreduce_sum({x})}), Device::cpu);
    std::vector<double> us;
    for (int r = 0; r < runs + 5; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      ex.run();
      const double t = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      if (r >= 5) us.push_back(t);  // the first runs warm the buffers
    }
    std::nth_element(us.begin(), us.begin() + runs / 2, us.end());
    const double median = us[size_t(runs / 2)], bytes = 4.0 * double(n);
    if (session.root())
      std::printf("%12lld %12.1f %12.3f %14.3f\n", static_cast<long long>(n), median, bytes / median * 1e-3,
                  2.0 * (ranks - 1) / ranks * bytes / median * 1e-3);
  }
  return 0;
}
