// The data-parallel step (models/train_step.h) against a stand-in for the other ranks: a
// communicator of 2 ranks whose other rank holds exactly this rank's rows, so the sum over the
// ranks is twice this rank's values. With share 1/2 each, the step must then be the one-process
// step on those rows, bit for bit (scaling by 1/2 and by 2 is exact), which fails if a gradient
// is left out of the sum, summed twice, or not weighted. Also: how the gradients are bucketed,
// that the plan starts the first bucket's sum while the backward pass still has products to run,
// and that a sum left in flight is finished before anything reads it.
#include <catch2/catch.hpp>

#include "backends/communicator.h"
#include "helpers.h"
#include "models/train_step.h"

using namespace ag;
using namespace ag::models;
using namespace ag::models::testing;

namespace {

class Mirror final : public Communicator {
 public:
  // deferred: a started sum is left undone until finish_sums(), as a sum in flight over a network
  // is; a kernel that read its memory before then would read this rank's half only.
  explicit Mirror(bool deferred = false) : deferred_(deferred) {}
  std::vector<int64_t> calls;  // the element count of each sum, in order
  int64_t kernels_in_flight = 0;  // progress_sums() calls: kernels that ran while a sum was pending
  int rank() const override { return 0; }
  int size() const override { return 2; }
  const char* name() const override { return "mirror"; }
  void allreduce_sum(void* data, int64_t count, DType dtype, Device device, void*) override {
    REQUIRE(device == Device::cpu);
    calls.push_back(count);
    twice(data, count, dtype);
  }
  void start_allreduce_sum(void* data, int64_t count, DType dtype) override {
    if (!deferred_) return allreduce_sum(data, count, dtype, Device::cpu, nullptr);
    calls.push_back(count);
    pending_.push_back({data, count, dtype});
  }
  bool sums_pending() const override { return !pending_.empty(); }
  void progress_sums() override { ++kernels_in_flight; }
  void finish_sums() override {
    for (const Sum& s : pending_) twice(s.data, s.count, s.dtype);
    pending_.clear();
  }

 private:
  struct Sum {
    void* data;
    int64_t count;
    DType dtype;
  };
  static void twice(void* data, int64_t count, DType dtype) {
    for (int64_t i = 0; i < count; ++i) {
      if (dtype == DType::f32) static_cast<float*>(data)[i] *= 2;
      else static_cast<double*>(data)[i] *= 2;
    }
  }
  bool deferred_;
  std::vector<Sum> pending_;
};

// Installs a communicator for one scope.
struct Installed {
  Mirror* mirror;
  explicit Installed(std::unique_ptr<Mirror> m) : mirror(m.get()) { set_communicator(std::move(m)); }
  ~Installed() { set_communicator(nullptr); }
};

struct StepResult {
  std::vector<double> loss;                 // per step
  std::vector<std::vector<double>> params;  // after the steps
  std::vector<int> collective_positions, matmul_positions;  // in the plan's step order
};

StepResult train_steps(const std::string& kind, std::vector<int> sizes, const std::string& optimiser, double share) {
  ModelConfig config;
  config.kind = kind;
  config.sizes = std::move(sizes);
  config.seed = 3;
  std::unique_ptr<Model> model = make_model(config, Device::cpu);
  OptimConfig optim;
  optim.kind = optimiser;
  optim.lr = 0.05;
  std::unique_ptr<Optimizer> opt = Optimizer::make(optim, model->params());
  ParamStore counters(Device::cpu, DType::f32, 0);
  const int step = counters.add("step", Shape{}, Init::Zeros());
  Graph g;
  GraphParams p(g, model->params()), c(g, counters);
  const int64_t batch = 12;
  Batch b;
  b.x = input(g, Shape{batch, model->input_dim()}, "x");
  b.step = c[step];
  StepGraph s = build_step(*model, p, b, model->phases()[0], 0, {opt.get()}, share);
  std::vector<Value> outputs = s.outputs;
  outputs.push_back(assign(b.step, b.step + 1.0f));
  Executor ex(compile(outputs), Device::cpu);
  StepResult r;
  for (size_t k = 0; k < ex.plan().steps.size(); ++k) {
    const OpCode op = g.node(ex.plan().steps[k]).op;
    if (op == OpCode::allreduce_sum) r.collective_positions.push_back(int(k));
    if (op == OpCode::matmul) r.matmul_positions.push_back(int(k));
  }
  const Generated data = generated_digits(3 * batch, model->input_dim());
  for (int k = 0; k < 3; ++k) {
    ex.set_input(b.x, data.images.data() + k * batch * model->input_dim());
    ex.run();
    r.loss.push_back(ex.read_scalar(s.loss));
  }
  for (int i = 0; i < model->params().count(); ++i) r.params.push_back(values(model->params().read(i)));
  return r;
}

}  // namespace

TEST_CASE("a data-parallel step sums every weighted gradient once: 2 mirrored ranks = 1 process", "[dist]") {
  for (const auto& [kind, sizes, optimiser] :
       {std::tuple<std::string, std::vector<int>, std::string>{"ae", {64, 16}, "adagrad"},
        {"deep", {64, 32, 16, 8}, "adam"}}) {
    for (bool deferred : {false, true}) {
      INFO(kind << " with " << optimiser << (deferred ? ", sums left in flight until read" : ", sums at once"));
      const StepResult alone = train_steps(kind, sizes, optimiser, 1.0);
      CHECK(alone.collective_positions.empty());  // one process: nothing added to the step
      Installed two(std::make_unique<Mirror>(deferred));
      const StepResult parallel = train_steps(kind, sizes, optimiser, 0.5);
      CHECK(parallel.loss == alone.loss);
      CHECK(parallel.params == alone.params);
      // The loss and every parameter's gradient, once each, in buckets of at most 8 parts.
      int64_t summed = 1, parts = 1;
      for (const std::vector<double>& v : alone.params) summed += int64_t(v.size()), ++parts;
      int64_t total = 0;
      for (int64_t n : two.mirror->calls) total += n;
      CHECK(total == 3 * summed);  // three steps
      CHECK(two.mirror->calls.size() == 3 * size_t((parts + 7) / 8));
      CHECK(parallel.collective_positions.size() == size_t((parts + 7) / 8));
      if (kind == "deep") {  // 13 parts, two buckets: the first is summed before the backward pass ends
        REQUIRE(parallel.collective_positions.size() == 2);
        CHECK(parallel.collective_positions.front() < parallel.matmul_positions.back());
        if (deferred) CHECK(two.mirror->kernels_in_flight > 0);  // and kernels run while it is in flight
      }
    }
  }
}

TEST_CASE("one process refuses a share of the batch", "[dist]") {
  CHECK_THROWS_WITH(train_steps("ae", {64, 16}, "adagrad", 0.5), Catch::Contains("only rank"));
}
