// Every variant learns: on small generated digits, tiny sizes, a few dozen steps, its objective
// on held-out examples falls clearly from the untrained model's. Plus what the variants add:
// the stacked model's phases and classifier head, the VAE's samples and latent walks.
#include <catch2/catch.hpp>

#include <cmath>
#include <optional>

#include "helpers.h"
#include "models/aae.h"
#include "models/vae.h"

using namespace ag;
using namespace ag::models;
using namespace ag::models::testing;

namespace {

constexpr int dim = 64;  // 8 x 8 "images", so the affine corruption applies too

struct Learned {
  EvalReport before, after;
  std::vector<EpochReport> epochs;
  std::shared_ptr<Model> model;  // trained
};

// Adagrad as in the tutorial, with a larger step so a tiny run moves far enough.
OptimConfig fast_adagrad() {
  OptimConfig o;
  o.lr = 0.1;
  return o;
}

Learned learn(ModelConfig c, int epochs = 8, OptimConfig optim = fast_adagrad(), int pixels = dim) {
  c.seed = 1;
  auto model = make_model(c, Device::cpu);
  Generated train = generated_digits(300, pixels), test = generated_digits(100, pixels, 1000);
  TrainConfig tc;
  tc.epochs = epochs;
  tc.batch_size = 30;
  tc.eval_batch_size = 50;
  tc.optim = optim;
  Trainer trainer(*model, tc);
  const int last = int(model->phases().size()) - 1;
  Learned r;
  r.before = trainer.evaluate(test.view(), last);
  r.epochs = trainer.fit(train.view(), test.view());
  r.after = trainer.evaluate(test.view(), last);
  r.model = std::move(model);
  return r;
}

ModelConfig kind(const std::string& k, std::vector<int> sizes) {
  ModelConfig c;
  c.kind = k;
  c.sizes = std::move(sizes);
  return c;
}

void check_learns(const Learned& r, double factor = 0.8) {
  INFO("objective before " << r.before.loss << ", after " << r.after.loss << "; bce before " << r.before.bce
                           << ", after " << r.after.bce);
  CHECK(std::isfinite(r.after.loss));
  CHECK(r.after.loss < factor * r.before.loss);
  CHECK(r.after.bce < r.before.bce);
  CHECK(r.after.mse < r.before.mse);
}

}  // namespace

TEST_CASE("the plain autoencoder learns: under- and overcomplete, ReLU or sigmoid, BCE or MSE", "[variants][ae]") {
  SECTION("undercomplete, ReLU, BCE (the tutorial's)") { check_learns(learn(kind("ae", {dim, 16}))); }
  SECTION("overcomplete, sigmoid, squared error") {
    ModelConfig c = kind("ae", {dim, 96});
    c.activation = "sigmoid";
    c.loss = "mse";
    check_learns(learn(c));
  }
  SECTION("tied weights") {
    ModelConfig c = kind("ae", {dim, 16});
    c.tied = true;
    check_learns(learn(c));
  }
}

TEST_CASE("the denoising autoencoder learns under every corruption", "[variants][dae]") {
  for (const char* noise : {"mask", "salt_pepper", "gaussian", "affine"}) {
    ModelConfig c = kind("dae", {dim, 16});
    c.noise = noise;
    if (c.noise == "gaussian") c.noise_level = 0.2;
    if (c.noise == "affine") c.affine_shift_px = 1;
    INFO(noise);
    check_learns(learn(c));
  }
}

namespace {

// What a model's training input adds to 4 generated images (training_input(x) - x, step 0), with
// the batch's noise scale fed `scale` where one is given (the trainer's noise schedule).
std::vector<double> input_noise(const ModelConfig& c, std::optional<float> scale = std::nullopt) {
  auto model = make_model(c, Device::cpu);
  Graph g;
  GraphParams p(g, model->params());
  Batch b;
  b.x = input(g, {4, dim}, "x");
  b.step = constant(g, 0.0);
  if (scale) b.noise_scale = input(g, {}, "scale");
  Value noisy = model->training_input(p, b);
  REQUIRE(noisy.valid());
  Executor ex(compile({b.x, noisy}));
  Generated d = generated_digits(4, dim);
  std::copy(d.images.begin(), d.images.end(), ex.input(b.x).ptr<float>());
  if (scale) ex.input(b.noise_scale).ptr<float>()[0] = *scale;
  ex.run();
  HostTensor clean = ex.read(b.x), got = ex.read(noisy);
  std::vector<double> n(size_t(got.numel()));
  for (int64_t i = 0; i < got.numel(); ++i) n[size_t(i)] = got.at(i) - clean.at(i);
  return n;
}

double rms(const std::vector<double>& v) {
  double sq = 0;
  for (double x : v) sq += x * x;
  return std::sqrt(sq / double(v.size()));
}

}  // namespace

TEST_CASE("gaussian input noise (--gaussian-noise): any model trains on noisy inputs against the clean image", "[variants][noise]") {
  for (const char* k : {"ae", "deep", "vae"}) {
    INFO(k);
    ModelConfig c = kind(k, std::string(k) == "ae" ? std::vector<int>{dim, 16} : std::vector<int>{dim, 32, 8});
    c.gaussian_noise = 0.3;
    CHECK(rms(input_noise(c)) == Approx(0.3).epsilon(0.15));  // the noise's empirical std
  }
  ModelConfig c = kind("ae", {dim, 16});
  c.gaussian_noise = 0.2;
  check_learns(learn(c));
  ModelConfig dae = kind("dae", {dim, 16});
  dae.gaussian_noise = 0.2;
  CHECK_THROWS_WITH(make_model(dae, Device::cpu), Catch::Contains("gaussian_noise"));
}

TEST_CASE("a noise scale (the trainer's noise schedule) multiplies the Gaussian draws: ae's gaussian_noise, dae's noise = gaussian",
          "[variants][noise]") {
  ModelConfig ae = kind("ae", {dim, 16});
  ae.gaussian_noise = 0.3;
  ModelConfig dae = kind("dae", {dim, 16});
  dae.noise = "gaussian";
  dae.noise_level = 0.3;
  ModelConfig masked = kind("dae", {dim, 16});
  CHECK(ae.has_gaussian_noise());
  CHECK(dae.has_gaussian_noise());
  CHECK_FALSE(masked.has_gaussian_noise());  // mask noise is a probability, not scaled
  CHECK_FALSE(kind("deep", {dim, 32, 8}).has_gaussian_noise());
  for (const ModelConfig& c : {ae, dae}) {
    INFO(c.kind);
    const std::vector<double> full = input_noise(c, 1.0f), half = input_noise(c, 0.5f), none = input_noise(c, 0.0f);
    for (size_t i = 0; i < full.size(); ++i) {
      CHECK(half[i] == Approx(0.5 * full[i]).margin(1e-6));  // the same draws, half as large
      CHECK(none[i] == 0.0);                                  // scale 0: the clean image itself
    }
    CHECK(rms(full) == Approx(0.3).epsilon(0.15));
  }
}

TEST_CASE("the contractive autoencoder learns, closed form and double backward", "[variants][cae]") {
  SECTION("sigmoid encoder, closed form") { check_learns(learn(kind("cae", {dim, 16}))); }
  SECTION("tanh encoder, exact Jacobian by double backward") {
    ModelConfig c = kind("cae", {dim, 6});
    c.activation = "tanh";
    c.jacobian = "exact";
    check_learns(learn(c));
  }
  SECTION("ReLU encoder, random projections") {
    ModelConfig c = kind("cae", {dim, 16});
    c.activation = "relu";
    c.jacobian = "projection";
    check_learns(learn(c));
  }
}

TEST_CASE("the sparse autoencoder learns and its codes become sparse", "[variants][sparse]") {
  SECTION("KL to rho") { check_learns(learn(kind("sparse", {dim, 16}))); }
  SECTION("L1 on a ReLU code") {
    ModelConfig c = kind("sparse", {dim, 16});
    c.activation = "relu";
    c.beta = 0;
    c.l1 = 0.01;
    check_learns(learn(c));
  }
}

TEST_CASE("the stacked autoencoder pretrains block by block, fine-tunes, and classifies", "[variants][sae]") {
  ModelConfig c = kind("sae", {dim, 24, 12});
  c.classes = 10;
  auto model = make_model(c, Device::cpu);
  std::vector<Phase> phases = model->phases();
  REQUIRE(phases.size() == 4);
  CHECK(phases[0].name == "pretrain-1");
  CHECK(phases[1].name == "pretrain-2");
  CHECK(phases[2].name == "finetune");
  CHECK(phases[3].name == "classify");
  CHECK(phases[3].uses_labels);
  CHECK(phases[0].trainable.size() == 4);  // block 1's encoder and decoder, weight and bias
  CHECK(phases[2].trainable.size() == 8);  // every block, no head

  Learned r = learn(c, 6);
  REQUIRE(r.epochs.size() == 24);
  for (size_t ph = 0; ph < 3; ++ph) {  // each reconstruction phase lowers its own objective
    INFO("phase " << r.epochs[ph * 6].phase_name);
    CHECK(r.epochs[ph * 6 + 5].train_loss < r.epochs[ph * 6].train_loss);
  }
  CHECK(r.epochs[23].test.error < 0.3);  // ten prototypes are easy to tell apart
  CHECK(r.epochs[23].test.error < r.epochs[18].test.error + 1e-9);
  CHECK(std::isnan(r.epochs[0].test.error) == false);
}

TEST_CASE("the winner-take-all autoencoder learns; in training each unit keeps its top of the batch", "[variants][wta]") {
  OptimConfig adam;
  adam.kind = "adam";
  adam.lr = 0.01;
  ModelConfig c = kind("wta", {dim, 48});
  c.wta_rate = 0.1;
  check_learns(learn(c, 8, adam));

  // The training objective decodes the code with all but ceil(0.1 x 30) = 3 activations per unit zeroed.
  c.seed = 2;
  auto model = make_model(c, Device::cpu);
  Graph g;
  GraphParams p(g, model->params());
  Batch b;
  b.x = input(g, {30, dim}, "x");
  b.step = constant(g, 0.0);
  Value loss = model->loss(p, b, 0);
  int topk = 0;
  for (int id = 0; id < g.size(); ++id)
    if (g.node(id).op == OpCode::batch_topk_mask) {
      ++topk;
      CHECK(g.node(id).attrs.i[0] == 3);
    }
  CHECK(topk == 1);
  CHECK(loss.shape() == Shape{});
  // Evaluation passes every activation.
  Batch eval = b;
  eval.mode = Mode::eval;
  const int before = g.size();
  (void)model->loss(p, eval, 0);
  for (int id = before; id < g.size(); ++id) CHECK(g.node(id).op != OpCode::batch_topk_mask);
}

TEST_CASE("the seq2seq LSTM autoencoder learns, teacher-forced and free-running", "[variants][seq2seq]") {
  OptimConfig adam;
  adam.kind = "adam";
  adam.lr = 0.01;
  adam.grad_clamp = default_grad_clamp("seq2seq");
  CHECK(adam.grad_clamp == 10);
  Learned r = learn(kind("seq2seq", {dim, 16}), 8, adam);  // 8 rows of 8 pixels
  check_learns(r);
  REQUIRE(r.after.extra.size() == 1);
  CHECK(r.after.extra[0].name == "bce_free_running");
  INFO("free-running BCE before " << r.before.extra[0].value << ", after " << r.after.extra[0].value);
  CHECK(std::isfinite(r.after.extra[0].value));
  CHECK(r.after.extra[0].value < r.before.extra[0].value);
  CHECK(r.after.extra[0].value >= r.after.bce * 0.9);  // its own rows are no better a guide than the true ones

  ModelConfig odd = kind("seq2seq", {60, 16});
  CHECK_THROWS_WITH(make_model(odd, Device::cpu), Catch::Contains("square"));
}

TEST_CASE("the deep autoencoder learns, with a linear code and a mirror decoder", "[variants][deep]") {
  check_learns(learn(kind("deep", {dim, 32, 16, 4})));
  ModelConfig tied = kind("deep", {dim, 32, 16, 4});
  tied.tied = true;
  auto model = make_model(tied, Device::cpu);
  CHECK(model->params().count() == 3 * 2 + 3);  // three encoders, three decoder biases
  check_learns(learn(tied));
}

TEST_CASE("the variational autoencoder learns, samples from the prior and walks its latent space", "[variants][vae]") {
  OptimConfig adam;
  adam.kind = "adam";
  adam.lr = 0.01;
  check_learns(learn(kind("vae", {dim, 32, 4}), 8, adam), 0.9);

  ModelConfig c = kind("vae", {dim, 32, 4});
  auto model = make_model(c, Device::cpu);
  auto& vae = dynamic_cast<VariationalAutoencoder&>(*model);
  auto sample = [&](uint64_t seed) { return vae.decode(vae.prior(5, 1.0, seed)); };
  std::vector<float> samples = sample(42);
  REQUIRE(samples.size() == size_t(5 * dim));
  for (float v : samples) CHECK((v >= 0 && v <= 1));
  CHECK(samples == sample(42));
  CHECK(samples != sample(43));

  Generated d = generated_digits(2, dim);
  std::vector<float> walk = vae.interpolate(d.images.data(), d.images.data() + dim, 5);
  REQUIRE(walk.size() == size_t(5 * dim));
  TrainConfig tc;
  Trainer trainer(*model, tc);
  std::vector<float> ends = trainer.reconstruct(d.images.data(), 2);  // decoded from mu, as the walk's ends
  for (int i = 0; i < dim; ++i) {
    CHECK(walk[size_t(i)] == Approx(ends[size_t(i)]).margin(1e-5));
    CHECK(walk[size_t(4 * dim + i)] == Approx(ends[size_t(dim + i)]).margin(1e-5));
  }
}

TEST_CASE("the categorical VAE learns through its Gumbel-softmax relaxation", "[variants][catvae]") {
  OptimConfig adam;
  adam.kind = "adam";
  adam.lr = 0.01;
  Learned r = learn(kind("catvae", {dim, 32, 16, 20}), 8, adam);
  check_learns(r);
  // Its code is two groups of ten category probabilities each summing to 1.
  auto model = make_model(kind("catvae", {dim, 32, 16, 20}), Device::cpu);
  Graph g;
  GraphParams p(g, model->params());
  Value x = input(g, {3, dim}, "x");
  Value code = model->encode(p, x);
  Executor ex(compile({code}));
  Generated d = generated_digits(3, dim);
  std::copy(d.images.begin(), d.images.end(), ex.input(x).ptr<float>());
  ex.run();
  HostTensor y = ex.read(code);
  REQUIRE(y.numel() == 3 * 20);
  for (int64_t group = 0; group < 6; ++group) {
    double total = 0;
    for (int k = 0; k < 10; ++k) total += y.at(group * 10 + k);
    CHECK(total == Approx(1.0).epsilon(1e-5));
  }
  CHECK_THROWS_WITH(make_model(kind("catvae", {dim, 32, 25}), Device::cpu), Catch::Contains("multiple of 10"));
}

TEST_CASE("the adversarial autoencoder learns with its adversary, and its codes decode back", "[variants][aae]") {
  OptimConfig adam;
  adam.kind = "adam";
  adam.lr = 0.01;
  Learned r = learn(kind("aae", {dim, 32, 16, 2}), 8, adam);
  INFO("bce before " << r.before.bce << ", after " << r.after.bce);
  CHECK(r.after.bce < 0.8 * r.before.bce);
  CHECK(r.after.loss < r.before.loss);

  auto model = make_model(kind("aae", {dim, 32, 16, 2}), Device::cpu);
  auto& aae = dynamic_cast<AdversarialAutoencoder&>(*model);
  Generated d = generated_digits(4, dim);
  std::vector<float> z = aae.codes(d.images.data(), 4);
  REQUIRE(z.size() == 8);
  std::vector<float> images = aae.decode(z);
  TrainConfig tc;
  Trainer trainer(*model, tc);
  std::vector<float> recon = trainer.reconstruct(d.images.data(), 4);
  REQUIRE(images.size() == recon.size());
  for (size_t i = 0; i < recon.size(); ++i) CHECK(images[i] == Approx(recon[i]).margin(1e-6));
}

namespace {

// Mean and standard deviation of values.
std::pair<double, double> moments(const std::vector<float>& v) {
  double mean = 0, square = 0;
  for (float x : v) mean += x / double(v.size());
  for (float x : v) square += (x - mean) * (x - mean) / double(v.size());
  return {mean, std::sqrt(square)};
}

}  // namespace

TEST_CASE("the generative models draw from their priors, and MCMC chains decode and re-encode", "[variants][mcmc]") {
  OptimConfig adam;
  adam.kind = "adam";
  adam.lr = 0.01;
  for (const auto& [name, sizes] : std::vector<std::pair<std::string, std::vector<int>>>{
           {"vae", {dim, 32, 4}}, {"catvae", {dim, 32, 16, 20}}, {"aae", {dim, 32, 16, 2}}}) {
    INFO(name);
    Learned r = learn(kind(name, sizes), 4, adam);
    auto& gen = dynamic_cast<Generative&>(*r.model);
    const int code = sizes.back();

    // The prior: N(0, std^2 I), or one uniformly drawn category per group of ten.
    const std::vector<float> z = gen.prior(2000, 0.5, 7);
    REQUIRE(z.size() == size_t(2000 * code));
    if (name == "catvae") {
      std::vector<int> count(size_t(code), 0);
      for (int64_t row = 0; row < 2000; ++row)
        for (int group = 0; group < code / 10; ++group) {
          int ones = 0;
          for (int k = 0; k < 10; ++k) {
            const float v = z[size_t(row * code + group * 10 + k)];
            CHECK((v == 0.0f || v == 1.0f));
            ones += v == 1.0f;
            count[size_t(group * 10 + k)] += v == 1.0f;
          }
          CHECK(ones == 1);
        }
      for (int c : count) CHECK((c > 140 && c < 260));  // 200 expected, sd 13
    } else {
      const auto [mean, sd] = moments(z);
      CHECK(std::abs(mean) < 0.03);
      CHECK(sd == Approx(0.5).epsilon(0.05));
    }

    // A chain: the plain samples first, then decode(reencode(previous)); deterministic per seed.
    const std::vector<std::vector<float>> chain = mcmc_chain(gen, 6, 3, 1.0, 11);
    REQUIRE(chain.size() == 4);
    CHECK(chain[0] == gen.decode(gen.prior(6, 1.0, 11)));
    for (size_t s = 1; s < chain.size(); ++s) {
      REQUIRE(chain[s].size() == size_t(6 * dim));
      for (float v : chain[s]) REQUIRE((v >= 0 && v <= 1));
      CHECK(chain[s] == gen.decode(gen.reencode(chain[s - 1], 11, int64_t(s))));
    }
    CHECK(chain == mcmc_chain(gen, 6, 3, 1.0, 11));
    CHECK(chain != mcmc_chain(gen, 6, 3, 1.0, 12));

    // Re-encoding: the aae's codes are its encoder's; the vae's a draw around mu, new per step;
    // the catvae's categories drawn with the probabilities softmax(logits).
    Generated d = generated_digits(1, dim);
    if (name == "aae") {
      CHECK(gen.reencode(d.images, 1, 1) == dynamic_cast<AdversarialAutoencoder&>(*r.model).codes(d.images.data(), 1));
    } else {
      std::vector<float> many;
      for (int i = 0; i < 3000; ++i) many.insert(many.end(), d.images.begin(), d.images.end());
      const std::vector<float> draws = gen.reencode(many, 5, 1);
      CHECK(draws != gen.reencode(many, 5, 2));
      // encode() is the mean (vae) or softmax(logits / 0.5) (catvae) of one image.
      Graph g;
      GraphParams p(g, r.model->params());
      Value x = input(g, {1, dim}, "x");
      Value e = r.model->encode(p, x);
      Executor ex(compile({e}));
      std::copy(d.images.begin(), d.images.end(), ex.input(x).ptr<float>());
      ex.run();
      HostTensor enc = ex.read(e);
      for (int j = 0; j < code; ++j) {
        double mean = 0;
        for (int i = 0; i < 3000; ++i) mean += draws[size_t(i * code + j)] / 3000.0;
        if (name == "vae") {
          CHECK(mean == Approx(enc.at(j)).margin(0.1));
        } else {  // q_k = sqrt(e_k) / sum over the group of sqrt(e), e = softmax(2 logits)
          double norm = 0;
          for (int k = 0; k < 10; ++k) norm += std::sqrt(enc.at((j / 10) * 10 + k));
          CHECK(mean == Approx(std::sqrt(enc.at(j)) / norm).margin(0.03));
        }
      }
    }
  }
  auto plain = make_model(kind("ae", {dim, 8}), Device::cpu);
  CHECK(dynamic_cast<Generative*>(plain.get()) == nullptr);
}

TEST_CASE("the convolutional autoencoders learn, and their gradients match central differences", "[variants][conv]") {
  OptimConfig adam;
  adam.kind = "adam";
  adam.lr = 0.01;
  for (const char* k : {"conv", "upconv", "convdae"}) {
    INFO(k);
    ModelConfig c = kind(k, {});
    c.noise_level = 0.2;  // convdae: Gaussian noise, milder than the default 0.5 for a run this short
    check_learns(learn(c, 4, adam, 784), 0.9);
  }
  for (const char* k : {"conv", "upconv"}) {  // convdae has 28353 parameters: too many to perturb one by one
    INFO(k);
    ModelConfig c = kind(k, {});
    c.seed = 3;
    auto model = make_model(c, Device::cpu, DType::f64);
    Graph g;
    GraphParams p(g, model->params());
    Batch b;
    b.x = input(g, {2, 784}, "x", DType::f64);
    b.step = constant(g, 1.0, {}, DType::f64);
    CHECK(model->encode(p, b.x).shape() == Shape{2, 128});
    Value loss = model->loss(p, b, 0);
    Generated d = generated_digits(2, 784);
    // Every 7th element of each parameter, its first among them: about 1400 of the
    // 9642 weights and biases (all of them made this the slowest test of the sanitizer build).
    const double error = max_gradient_error(
        p, loss, [&](Executor& ex) { feed_input(ex, b.x, std::vector<double>(d.images.begin(), d.images.end())); },
        1e-6, 7);
    CHECK(error < 1e-5);
  }
}
