// The trainer's promises: the same seed gives the same losses; a run saved after an epoch and
// resumed in a fresh process (new model, new trainer) reaches exactly the losses and parameters
// of an uninterrupted run; the last partial batch is trained by a second plan (or dropped);
// the learning rate changes between epochs without recompiling; bad state and data are refused.
#include <set>
#include <string>

#include <catch2/catch.hpp>

#include "helpers.h"

using namespace ag;
using namespace ag::models;
using namespace ag::models::testing;

namespace {

constexpr int dim = 64;

ModelConfig small(const std::string& kind) {
  ModelConfig c;
  c.kind = kind;
  c.sizes = kind == "sae" ? std::vector<int>{dim, 16, 8} : std::vector<int>{dim, 12};
  c.seed = 5;
  return c;
}

TrainConfig short_run(int epochs, const std::string& optimiser = "adagrad") {
  TrainConfig t;
  t.epochs = epochs;
  t.batch_size = 40;
  t.eval_batch_size = 30;
  t.seed = 9;
  t.optim.kind = optimiser;
  t.optim.lr = optimiser == "adagrad" ? 0.1 : 0.01;
  return t;
}

struct Run {
  std::vector<double> step_losses;
  std::vector<EpochReport> epochs;
  std::vector<std::vector<double>> params;
};

std::vector<std::vector<double>> all_params(Model& m) {
  std::vector<std::vector<double>> out;
  for (int i = 0; i < m.params().count(); ++i) out.push_back(values(m.params().read(i)));
  return out;
}

Run train(const ModelConfig& c, const TrainConfig& t, const Generated& data, const Generated& test) {
  auto model = make_model(c, Device::cpu);
  Trainer trainer(*model, t);
  Run r;
  trainer.on_step = [&](const StepInfo& s) { r.step_losses.push_back(s.loss); };
  r.epochs = trainer.fit(data.view(), test.view());
  r.params = all_params(*model);
  return r;
}

}  // namespace

TEST_CASE("the same seed gives the same losses, another seed other ones", "[trainer]") {
  Generated data = generated_digits(200, dim), test = generated_digits(60, dim, 500);
  ModelConfig c = small("dae");
  Run a = train(c, short_run(2), data, test), b = train(c, short_run(2), data, test);
  REQUIRE(a.step_losses.size() == 10);
  CHECK(a.step_losses == b.step_losses);
  CHECK(a.params == b.params);
  CHECK(a.epochs[1].test.loss == b.epochs[1].test.loss);
  TrainConfig reshuffled = short_run(2);
  reshuffled.seed = 10;
  CHECK(train(c, reshuffled, data, test).step_losses != a.step_losses);
  ModelConfig other_init = c;
  other_init.seed = 6;
  CHECK(train(other_init, short_run(2), data, test).step_losses != a.step_losses);
}

TEST_CASE("a resumed run reaches exactly the losses of an uninterrupted one", "[trainer][resume]") {
  Generated data = generated_digits(200, dim), test = generated_digits(60, dim, 500);
  for (const auto& [kind, optimiser] : {std::pair<std::string, std::string>{"dae", "adam"}, {"vae", "adam"},
                                        {"sae", "adagrad"}, {"ae", "sgd"}, {"catvae", "adam"}, {"aae", "adam"}}) {
    INFO(kind << " with " << optimiser);
    ModelConfig c = small(kind);
    if (kind == "vae") c.sizes = {dim, 16, 4};
    if (kind == "catvae" || kind == "aae") c.sizes = {dim, 16, kind == "aae" ? 2 : 20};  // batch norm, two players
    TrainConfig t = short_run(2, optimiser);
    if (optimiser == "sgd") t.optim.momentum = 0.9;
    Run whole = train(c, t, data, test);

    // First process: one epoch, then a checkpoint (as the CLI would write it, names + metadata).
    std::vector<std::pair<std::string, HostTensor>> tensors;
    std::map<std::string, std::string> metadata;
    {
      auto model = make_model(c, Device::cpu);
      Trainer trainer(*model, t);
      trainer.run_epoch(data.view(), test.view());
      TrainerState s = trainer.save_state();
      tensors = s.tensors;
      metadata = s.metadata();
    }
    // Second process: everything from the checkpoint.
    auto model = make_model(c, Device::cpu);
    Trainer trainer(*model, t);
    trainer.load_state(TrainerState::from(tensors, metadata));
    std::vector<EpochReport> rest = trainer.fit(data.view(), test.view());
    REQUIRE(rest.size() + 1 == whole.epochs.size());
    for (size_t k = 0; k < rest.size(); ++k) {
      const EpochReport& w = whole.epochs[k + 1];
      CHECK(rest[k].phase == w.phase);
      CHECK(rest[k].epoch == w.epoch);
      CHECK(rest[k].train_loss == w.train_loss);
      CHECK(rest[k].test.loss == w.test.loss);
      CHECK(rest[k].test.bce == w.test.bce);
    }
    CHECK(all_params(*model) == whole.params);
  }
}

TEST_CASE("the last partial batch is trained by a second plan, or dropped", "[trainer]") {
  Generated data = generated_digits(250, dim), test = generated_digits(70, dim, 500);
  ModelConfig c = small("ae");
  TrainConfig t = short_run(1);
  Run kept = train(c, t, data, test);
  CHECK(kept.step_losses.size() == 7);  // 6 batches of 40 and one of 10
  CHECK(kept.epochs[0].step == 7);
  t.drop_last = true;
  Run dropped = train(c, t, data, test);
  CHECK(dropped.step_losses.size() == 6);
  CHECK(dropped.params != kept.params);
}

TEST_CASE("evaluation covers every example, whatever the batch size", "[trainer]") {
  Generated test = generated_digits(70, dim, 500);
  auto model = make_model(small("ae"), Device::cpu);
  TrainConfig t = short_run(1);
  Trainer trainer(*model, t);  // eval batches of 30: 30, 30 and a plan for 10
  EvalReport split = trainer.evaluate(test.view());
  t.eval_batch_size = 70;
  Trainer whole(*model, t);
  EvalReport one = whole.evaluate(test.view());
  CHECK(split.n == 70);
  CHECK(split.bce == Approx(one.bce).epsilon(1e-6));
  CHECK(split.mse == Approx(one.mse).epsilon(1e-6));
  CHECK(split.loss == Approx(one.loss).epsilon(1e-6));
  CHECK(std::isnan(split.error));  // no classifier head
}

TEST_CASE("after the first epoch, a training step of every model allocates nothing", "[trainer]") {
  // The CPU's side of the CUDA check (tests/cuda/test_model_parity.cpp): the steps reuse their
  // plans' arenas, and four more steps are four more runs of one program each, nothing more.
  std::set<std::string> covered;
  for (const SmallVariant& v : small_variants()) {
    covered.insert(v.kind);
    const StepCosts costs = measure_step_costs(v.kind, v.sizes, Device::cpu);
    const BackendCounts more = costs.per_extra_steps();
    INFO(v.kind << ": an epoch of 4 steps made " << costs.short_epoch.allocations << " allocations in "
                << costs.short_epoch.eager_runs << " runs");
    CHECK(costs.short_epoch.eager_runs == 4);  // the steps ran, one program each, and nothing else
    CHECK(costs.short_epoch.allocations == 0);
    CHECK(costs.long_epoch.allocations == 0);
    CHECK(more.eager_runs == costs.extra_steps);
    CHECK(more.stream_syncs == 0);
    CHECK(more.graph_launches == 0);
  }
  for (const std::string& kind : model_kinds()) {
    INFO("small_variants() (tests/models/helpers.h) has no row for model '" << kind << "'");
    CHECK(covered.count(kind) == 1);
  }
}

TEST_CASE("the learning rate changes between epochs without recompiling", "[trainer]") {
  Generated data = generated_digits(120, dim);
  auto model = make_model(small("ae"), Device::cpu);
  TrainConfig t = short_run(3, "sgd");
  Trainer trainer(*model, t);
  std::vector<std::vector<double>> after;
  trainer.on_epoch = [&](const EpochReport& r) {
    after.push_back(values(model->params().read(0)));
    if (r.epoch == 0) trainer.optimizer().set_lr(0.0);  // freeze from the second epoch on
  };
  trainer.fit(data.view());
  REQUIRE(after.size() == 3);
  CHECK(after[1] == after[0]);
  CHECK(after[2] == after[0]);
  CHECK(trainer.optimizer().steps_taken() == 9);
}

TEST_CASE("bad state and bad data are refused, and nothing is overwritten", "[trainer][errors]") {
  Generated data = generated_digits(80, dim);
  auto model = make_model(small("ae"), Device::cpu);
  Trainer trainer(*model, short_run(2));
  TrainerState good = trainer.save_state();
  const std::vector<double> before = values(model->params().read(0));

  TrainerState missing = good;
  missing.tensors.pop_back();
  CHECK_THROWS_WITH(trainer.load_state(missing), Catch::Contains("counter/loss_sum"));
  TrainerState wrong_shape = good;
  wrong_shape.tensors.back().second = HostTensor(Shape{3}, DType::f32);
  wrong_shape.tensors.front().second = HostTensor(Shape{12, 64}, DType::f32);  // would be valid, must not land
  CHECK_THROWS_WITH(trainer.load_state(wrong_shape), Catch::Contains("counter/loss_sum") && Catch::Contains("[3]"));
  CHECK(values(model->params().read(0)) == before);
  CHECK_THROWS_WITH(TrainerState::from(good.tensors, {{"phase", "0"}, {"epoch", "x"}, {"step", "0"}}),
                    Catch::Contains("epoch"));

  DataView narrow{data.images.data(), data.n, dim - 1, nullptr};
  CHECK_THROWS_WITH(trainer.run_epoch(narrow), Catch::Contains("63") && Catch::Contains("64"));
  CHECK_THROWS_WITH(trainer.run_epoch(DataView{}), Catch::Contains("empty"));

  ModelConfig head = small("sae");
  head.classes = 10;
  auto classifier = make_model(head, Device::cpu);
  TrainConfig one = short_run(1);
  Trainer needs_labels(*classifier, one);
  DataView unlabelled{data.images.data(), data.n, dim, nullptr};
  for (int k = 0; k < 3; ++k) needs_labels.run_epoch(unlabelled);  // two pretraining phases, fine-tuning
  CHECK_THROWS_WITH(needs_labels.run_epoch(unlabelled), Catch::Contains("classify") && Catch::Contains("labels"));

  auto f64 = make_model(small("ae"), Device::cpu, DType::f64);
  CHECK_THROWS_WITH(Trainer(*f64, short_run(1)), Catch::Contains("f32"));
}

TEST_CASE("bad model settings are refused with the setting named", "[trainer][errors]") {
  ModelConfig c;
  c.kind = "gan";
  CHECK_THROWS_WITH(make_model(c, Device::cpu), Catch::Contains("gan"));
  c = ModelConfig{};
  c.activation = "swish";
  CHECK_THROWS_WITH(make_model(c, Device::cpu), Catch::Contains("swish"));
  c = ModelConfig{};
  c.kind = "cae";
  c.activation = "relu";
  c.jacobian = "closed";
  CHECK_THROWS_WITH(make_model(c, Device::cpu), Catch::Contains("closed"));
  c = ModelConfig{};
  c.kind = "dae";
  c.noise_level = 1.5;
  CHECK_THROWS_WITH(make_model(c, Device::cpu), Catch::Contains("1.5"));
  c = ModelConfig{};
  c.sizes = {784, 128, 64};
  CHECK_THROWS_WITH(make_model(c, Device::cpu), Catch::Contains("one hidden layer"));
  c = ModelConfig{};
  c.kind = "sparse";
  c.activation = "relu";
  CHECK_THROWS_WITH(make_model(c, Device::cpu), Catch::Contains("sigmoid"));
  ModelConfig defaults = ModelConfig{}.resolved();  // the tutorial's
  CHECK(defaults.sizes == std::vector<int>{784, 128});
  CHECK(defaults.activation == "relu");
  CHECK(defaults.loss == "bce");
  CHECK(TrainConfig{}.batch_size == 150);
  CHECK(TrainConfig{}.optim.kind == "adagrad");
  CHECK(TrainConfig{}.optim.lr == 0.01);
}
