// ModelConfig defaults and checks, the Model base class, and make_model's table of variants.
#include "models/model.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "models/variants.h"

namespace ag::models {

namespace {

struct Variant {
  const char* kind;
  std::unique_ptr<Model> (*make)(const ModelConfig&, Device, DType);
};

const Variant variants[] = {
    {"ae", make_autoencoder},  {"dae", make_denoising}, {"cae", make_contractive},   {"sparse", make_sparse},
    {"sae", make_stacked},     {"deep", make_deep},     {"vae", make_variational},     {"conv", make_conv},
    {"upconv", make_upconv},   {"convdae", make_convdae}, {"wta", make_wta}, {"seq2seq", make_seq2seq},
    {"catvae", make_catvae},   {"aae", make_aae},
};

bool one_of(const std::string& s, std::initializer_list<const char*> names) {
  return std::any_of(names.begin(), names.end(), [&](const char* n) { return s == n; });
}

}  // namespace

const std::vector<std::string>& model_kinds() {
  static const std::vector<std::string> kinds = [] {
    std::vector<std::string> k;
    for (const Variant& v : variants) k.push_back(v.kind);
    return k;
  }();
  return kinds;
}

bool is_conv_kind(const std::string& kind) { return one_of(kind, {"conv", "upconv", "convdae"}); }
bool is_denoising_kind(const std::string& kind) { return one_of(kind, {"dae", "convdae"}); }
double default_grad_clamp(const std::string& kind) { return kind == "seq2seq" ? 10.0 : 0.0; }

std::string default_optimiser(const std::string& kind) {
  return one_of(kind, {"vae", "wta", "seq2seq", "catvae", "aae"}) || is_conv_kind(kind) ? "adam" : "adagrad";
}

ModelConfig ModelConfig::resolved() const {
  ModelConfig c = *this;
  if (c.sizes.empty()) {
    if (kind == "sae") c.sizes = {784, 128, 64};
    else if (kind == "deep") c.sizes = {784, 1000, 500, 250, 30};
    else if (kind == "vae") c.sizes = {784, 400, 20};
    else if (kind == "convdae") c.sizes = {784, 32 * 7 * 7};
    else if (kind == "wta") c.sizes = {784, 1000};
    else if (kind == "seq2seq") c.sizes = {784, 256};
    else if (kind == "catvae") c.sizes = {784, 128, 64, 50};
    else if (kind == "aae") c.sizes = {784, 128, 64, 2};
    else c.sizes = {784, 128};
  }
  if (c.activation.empty()) c.activation = (kind == "cae" || kind == "sparse") ? "sigmoid" : "relu";
  if (c.loss.empty()) c.loss = "bce";
  if (c.noise.empty()) c.noise = kind == "convdae" ? "gaussian" : "mask";
  if (c.noise_level < 0) c.noise_level = kind == "convdae" && c.noise == "gaussian" ? 0.5 : 0.3;
  if (c.lambda < 0) c.lambda = 0.1;
  if (c.jacobian == "auto" || c.jacobian.empty())
    c.jacobian = c.activation == "sigmoid" ? "closed" : c.sizes.back() <= 64 ? "exact" : "projection";
  return c;
}

void ModelConfig::validate() const {
  auto fail = [&](const std::string& what) { throw Error(fmt::format("model '{}': {}", kind, what)); };
  if (std::find(model_kinds().begin(), model_kinds().end(), kind) == model_kinds().end())
    throw Error(fmt::format("model: unknown kind '{}' ({})", kind, fmt::join(model_kinds(), ", ")));
  if (sizes.size() < 2) fail("sizes needs at least an input and a code size");
  for (int s : sizes)
    if (s <= 0) fail(fmt::format("sizes must be positive, got {}", s));
  bool shallow = one_of(kind, {"ae", "dae", "cae", "sparse", "wta", "seq2seq"});
  if (shallow && sizes.size() != 2) fail("sizes must be {input, code} (one hidden layer)");
  if (kind == "vae" && sizes.size() < 3) fail("sizes must be {input, hidden..., latent}");
  if (one_of(kind, {"catvae", "aae"})) {  // batch-normalised ReLU layers, a Bernoulli decoder
    if (activation != "relu" || loss != "bce" || tied) fail("the architecture is fixed: relu, bce, untied");
    if (kind == "catvae" && sizes.back() % 10 != 0)
      fail(fmt::format("the code is groups of 10 categories: {} is not a multiple of 10", sizes.back()));
  }
  if (is_conv_kind(kind)) {
    const int code = kind == "convdae" ? 32 * 7 * 7 : 8 * 4 * 4;
    if (sizes != std::vector<int>{784, code})
      fail(fmt::format("sizes are fixed by the architecture: 784 (28x28 images) -> {}", code));
  }
  if (!one_of(activation, {"relu", "sigmoid", "tanh", "softplus", "linear"}))
    fail(fmt::format("unknown activation '{}' (relu, sigmoid, tanh, softplus, linear)", activation));
  if (!one_of(loss, {"bce", "mse"})) fail(fmt::format("unknown loss '{}' (bce, mse)", loss));
  if (kind == "vae" && loss != "bce") fail("the variational model's decoder is Bernoulli: loss must be bce");
  if (kind == "seq2seq") {
    int side = 0;
    while (side * side < sizes[0]) ++side;
    if (side * side != sizes[0]) fail(fmt::format("the input size {} is not a square image (rows of pixels are the steps)", sizes[0]));
  }
  if (tied && (kind == "vae" || kind == "sae" || kind == "seq2seq" || is_conv_kind(kind))) fail("tied weights are for ae, dae, cae, sparse and deep");
  if (!one_of(noise, {"mask", "salt_pepper", "gaussian", "affine"}))
    fail(fmt::format("unknown noise '{}' (mask, salt_pepper, gaussian, affine)", noise));
  if ((noise == "mask" || noise == "salt_pepper") && !(noise_level >= 0 && noise_level <= 1))
    fail(fmt::format("noise level {} is not a probability", noise_level));
  if (noise == "gaussian" && !(noise_level >= 0)) fail("gaussian noise level must be >= 0");
  if ((kind == "dae" || kind == "convdae") && noise == "affine") {
    int side = 0;
    while (side * side < sizes[0]) ++side;
    if (side * side != sizes[0]) fail(fmt::format("affine noise needs square images, but the input size is {}", sizes[0]));
    if (!(affine_rotate_deg >= 0 && affine_scale >= 0 && affine_scale < 1 && affine_shift_px >= 0))
      fail("affine ranges must be >= 0 (and scale < 1)");
  }
  if (!(gaussian_noise >= 0) || !std::isfinite(gaussian_noise)) fail("gaussian_noise must be a finite number >= 0");
  if (gaussian_noise > 0 && is_denoising_kind(kind))
    fail("gaussian_noise is for the other models: dae and convdae corrupt with noise = gaussian");
  if (!(lambda >= 0)) fail("lambda must be >= 0");
  if (!one_of(jacobian, {"closed", "exact", "projection"}))
    fail(fmt::format("unknown jacobian '{}' (auto, closed, exact, projection)", jacobian));
  if (kind == "cae" && jacobian == "closed" && activation != "sigmoid")
    fail("the closed-form Jacobian penalty is for sigmoid encoders (use exact or projection)");
  if (projections < 1) fail("projections must be >= 1");
  if (!(rho > 0 && rho < 1)) fail(fmt::format("rho {} must be in (0, 1)", rho));
  if (!(beta >= 0) || !(l1 >= 0)) fail("beta and l1 must be >= 0");
  if (!(wta_rate > 0 && wta_rate <= 1)) fail(fmt::format("wta_rate {} must be in (0, 1]", wta_rate));
  if (kind == "sparse" && beta > 0 && activation != "sigmoid")
    fail("the KL sparsity penalty needs codes in (0, 1): use a sigmoid code (or beta 0 with l1)");
  if (classes < 0 || classes > 256) fail(fmt::format("classes {} is outside 0..256", classes));
  if (classes > 0 && !one_of(kind, {"sae", "ae", "dae", "cae", "sparse", "deep"}))
    fail("a softmax head (classes > 0) is for the dense encoders: ae, dae, cae, sparse, sae and deep");
}

bool ModelConfig::has_gaussian_noise() const {
  const ModelConfig r = resolved();
  return r.gaussian_noise > 0 || (is_denoising_kind(r.kind) && r.noise == "gaussian" && r.noise_level > 0);
}

Model::Model(ModelConfig config, Device device, DType dtype)
    : config_(std::move(config)), params_(device, dtype, config_.seed) {}

std::vector<Phase> Model::phases() { return {Phase{"train", all_params(), false}}; }

Value Model::classify(GraphParams&, Value) { return {}; }

std::vector<Metric> Model::metrics(GraphParams&, Value) { return {}; }

Value Model::corrupted(GraphParams&, const Batch& batch) {
  return config_.gaussian_noise > 0 ? corrupt(config_, batch, "gaussian", config_.gaussian_noise) : Value{};
}

Value Model::training_input(GraphParams& p, const Batch& batch) {
  Value noisy = corrupted(p, batch);
  return noisy.valid() ? noisy : batch.x;
}

void Model::corrupt_on_host(const float*, float*, int64_t, int, int64_t) const {
  throw Error(fmt::format("model '{}' does not corrupt its input on the host", config_.kind));
}

std::vector<int> Model::all_params() const {
  std::vector<int> all;
  for (int i = 0; i < params_.count(); ++i)
    if (params_.trainable(i)) all.push_back(i);
  return all;
}

namespace {

std::vector<float> read_floats(Executor& ex, Value v) {
  ex.run();
  HostTensor h = ex.read(v);
  std::vector<float> out(size_t(h.numel()));
  for (int64_t i = 0; i < h.numel(); ++i) out[size_t(i)] = float(h.at(i));
  return out;
}

}  // namespace

std::vector<float> map_rows(Model& model, const float* rows, int64_t n, int width,
                            const std::function<Value(GraphParams&, Value)>& f) {
  if (n <= 0 || width <= 0)
    throw Error(fmt::format("model '{}': needs at least one row of at least one value, not {} x {}", model.config().kind, n, width));
  Graph g;
  GraphParams p(g, model.params());
  Value in = input(g, Shape{n, width}, "rows", model.dtype());
  Value out = f(p, in);
  Executor ex(compile({out}), model.device());
  Tensor t = ex.input(in);
  for (int64_t i = 0; i < n * width; ++i) {
    if (t.dtype == DType::f32) t.ptr<float>()[i] = rows[i];
    else t.ptr<double>()[i] = rows[i];
  }
  return read_floats(ex, out);
}

std::vector<float> normal_rows(Model& model, int64_t n, int width, double std, uint64_t seed, int64_t step) {
  if (n <= 0 || width <= 0 || !(std > 0) || !std::isfinite(std))
    throw Error(fmt::format("model '{}': cannot draw {} x {} normal values of std {}", model.config().kind, n, width, std));
  Graph g;
  Value z = normal(constant(g, double(step), Shape{}, model.dtype()), Shape{n, width}, seed, 0.0f, float(std));
  Executor ex(compile({z}), model.device());
  return read_floats(ex, z);
}

std::vector<std::vector<float>> mcmc_chain(Generative& model, int64_t n, int steps, double std, uint64_t seed) {
  if (steps < 0) throw Error(fmt::format("mcmc: the number of steps must be at least 0, not {}", steps));
  std::vector<std::vector<float>> images = {model.decode(model.prior(n, std, seed))};
  for (int s = 1; s <= steps; ++s) images.push_back(model.decode(model.reencode(images.back(), seed, s)));
  return images;
}

std::unique_ptr<Model> make_model(const ModelConfig& config, Device device, DType dtype) {
  ModelConfig c = config.resolved();
  c.validate();
  for (const Variant& v : variants)
    if (c.kind == v.kind) return v.make(c, device, dtype);
  throw Error(fmt::format("model: unknown kind '{}'", c.kind));
}

}  // namespace ag::models
