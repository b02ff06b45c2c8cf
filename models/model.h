// The generic model interface the trainer, the CLI and the benchmark drive every variant
// through: a ModelConfig naming the variant and its sizes, make_model() building it on a
// device, and Model, which owns the parameters and writes its graphs on request (the training
// objective, the reconstruction logits, the code). Variants live in one small file each.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "graph/aegraph.h"
#include "models/layers.h"

namespace ag::models {

// Empty strings, empty sizes and negative numbers mean "the variant's default" (resolved()).
// The defaults of kind "ae" are the tutorial's: 784 -> 128, ReLU code, sigmoid decoder, BCE.
struct ModelConfig {
  std::string kind = "ae";       // ae | dae | cae | sparse | sae (stacked) | deep | vae | conv | upconv | convdae | wta | seq2seq
                                 // | catvae | aae
  std::vector<int> sizes;        // input, hidden..., code. ae/dae/cae/sparse {784, 128}; catvae {784, 128, 64, 50}
                                 // (groups of 10 categories); aae {784, 128, 64, 2};
                                 // sae {784, 128, 64}; deep {784, 1000, 500, 250, 30}; vae {784, 400, 20};
                                 // conv, upconv {784, 128}, convdae {784, 1568}: fixed by the architecture;
                                 // wta {784, 1000}; seq2seq {784, 256}: a square image, the LSTMs' units
  std::string activation;        // hidden/code activation: relu (cae, sparse: sigmoid)
  std::string loss;              // reconstruction loss: bce | mse (vae: always bce)
  bool tied = false;             // decoder weights = encoder weights transposed (ae, dae, cae, sparse, deep)
  uint64_t seed = 0;             // parameter init and noise streams

  // dae: mask | salt_pepper | gaussian | affine; level = v for mask and salt_pepper (fraction of
  // pixels corrupted), the standard deviation for gaussian, unused for affine.
  std::string noise;             // default mask (convdae: gaussian)
  double noise_level = -1;       // default 0.3 (convdae: 0.5)
  double affine_rotate_deg = 15, affine_scale = 0.1, affine_shift_px = 2;  // affine: max |angle|, |s - 1|, |shift|
  // Every model but dae and convdae (which have `noise`): > 0 adds N(0, gaussian_noise^2) to the
  // input in training, the target stays the clean image (Kaixhin's denoising switch).
  double gaussian_noise = 0;

  // cae: lambda * mean_batch ||J_f(x)||_F^2. jacobian: closed (sigmoid encoders only), exact
  // (double backward, one gradient per code unit), projection (E_v ||J^T v||^2, v ~ N(0, I)),
  // auto (closed for sigmoid, exact up to 64 code units, projection above).
  double lambda = -1;            // default 0.1
  std::string jacobian = "auto";
  int projections = 1;           // projection: draws per step

  // sparse: beta * sum_j KL(rho || rho_hat_j) + l1 * mean_batch sum_j |h_j|
  double rho = 0.05, beta = 3.0, l1 = 0;

  // wta: in training each code unit keeps its ceil(wta_rate x batch) largest activations over the batch.
  double wta_rate = 0.05;

  int classes = 0;               // ae, dae, cae, sparse, sae, deep: > 0 adds a softmax head fine-tuned with labels

  ModelConfig resolved() const;  // defaults filled in for `kind`
  bool has_gaussian_noise() const;  // its training input gets Gaussian noise (gaussian_noise, or dae/convdae's)
  void validate() const;         // throws ag::Error naming the bad field
};

// A test figure a variant adds to the evaluation (seq2seq: its free-running BCE): a scalar, the
// mean over the batch's examples. metrics.json and loss.csv call it "test_<name>".
struct Metric {
  std::string name, label;  // "bce_free_running"; what the report and ae-eval print beside it
  Value value;
};

// What a training or evaluation graph feeds the model. Only the inputs a model asks for are set.
struct Batch {
  Value x;          // [B, D] the clean input, in [0, 1]
  Value step;       // scalar counter: the random ops' step (new noise each training step)
  Value labels;     // [B, classes] one-hot, f32, when the phase uses labels
  Value corrupted;  // [B, D] a host-corrupted copy of x, when the model corrupts on the host
  Value noise_scale;  // scalar multiplying the Gaussian input noise's draws (a noise schedule); unset: 1
  Mode mode = Mode::train;  // the training step, or the evaluation of the objective
  // In a training step of a model with players(): minimise(k, loss) appends player k's gradient
  // and its optimiser's update at this point of the graph; what the model builds afterwards
  // reads player k's updated parameters (a sequential step, as in PyTorch). Empty in evaluation.
  std::function<void(int player, Value loss)> minimise;
};

// Parameters a model trains inside its step with their own optimiser (the adversarial
// autoencoder's discriminator), before the phase's optimiser updates the phase's parameters.
struct Player {
  std::string name;            // names its optimiser's hyperparameters in checkpoints
  std::vector<int> trainable;
};

// A training phase: stacked autoencoders pretrain block by block, then fine-tune. Every other
// variant has one phase training every parameter.
struct Phase {
  std::string name;
  std::vector<int> trainable;  // parameter indices the optimiser updates
  bool uses_labels = false;
};

class Model {
 public:
  Model(ModelConfig config, Device device, DType dtype = DType::f32);
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  ParamStore& params() { return params_; }
  Device device() const { return params_.device(); }
  DType dtype() const { return params_.dtype(); }
  int input_dim() const { return config_.sizes.front(); }
  int code_dim() const { return config_.sizes.back(); }

  virtual std::vector<Phase> phases();  // default: one phase, "train", every parameter
  // Extra players, each with an optimiser of its own (default: none). Their parameters must not
  // be in any phase's trainable list; loss() calls batch.minimise(k, ...) for each in training.
  virtual std::vector<Player> players() const { return {}; }

  // The training objective for phase `phase`: a scalar, the mean over the batch.
  virtual Value loss(GraphParams& p, const Batch& batch, int phase) = 0;
  // The decoder's pre-sigmoid output for a clean input, deterministic (no noise; the VAE uses
  // mu): reconstruction = sigmoid(logits). phase < 0: the finished model.
  virtual Value logits(GraphParams& p, Value x, int phase = -1) = 0;
  virtual Value encode(GraphParams& p, Value x) = 0;  // the code [B, code_dim], deterministic
  // The input the model trains on, for a denoising model its corrupted batch; an invalid Value
  // for models that train on the clean input. The default adds config.gaussian_noise when > 0.
  virtual Value corrupted(GraphParams& p, const Batch& batch);
  // What loss() feeds the encoder: corrupted() where there is one, else the clean batch.x.
  Value training_input(GraphParams& p, const Batch& batch);
  // Class logits [B, classes] when the model has a classifier head, else an invalid Value.
  virtual Value classify(GraphParams& p, Value x);
  virtual int classes() const { return 0; }
  // Figures the evaluation reports beside the test loss, BCE and squared error (default: none).
  virtual std::vector<Metric> metrics(GraphParams& p, Value x);

  // Models whose corruption has no graph op (the affine dae) corrupt each batch on the host:
  // `out` gets the corrupted `clean` (rows x dim). `step` is the training step counter.
  virtual bool corrupts_on_host() const { return false; }
  virtual void corrupt_on_host(const float* clean, float* out, int64_t rows, int dim, int64_t step) const;

  std::vector<int> all_params() const;  // every trainable parameter (not batch norm's running statistics)

 protected:
  ModelConfig config_;
  ParamStore params_;
};

// A one-off plan over host rows: `rows` (n x width, row-major) fed to f, its result read back as
// floats (any dtype, any device). The pictures, ae-eval and sampling use it.
std::vector<float> map_rows(Model& model, const float* rows, int64_t n, int width,
                            const std::function<Value(GraphParams&, Value)>& f);
// n rows of `width` drawn from N(0, std^2), by the graph's normal op under `seed` and `step`.
std::vector<float> normal_rows(Model& model, int64_t n, int width, double std, uint64_t seed, int64_t step = 0);

// A model that generates (vae, catvae, aae): codes drawn from its prior, images decoded from
// codes, and codes for images (a draw from q(z|x) where the model has one). ae-train's
// samples.png and ae-eval --mcmc use it; find it with dynamic_cast<Generative*>.
class Generative {
 public:
  virtual ~Generative() = default;
  // n codes (n x code_dim): N(0, std^2 I) for a Gaussian prior; the categorical VAE's prior is
  // one category per group, uniformly, and ignores std.
  virtual std::vector<float> prior(int64_t n, double std, uint64_t seed) = 0;
  virtual std::vector<float> decode(const std::vector<float>& codes) = 0;  // images, in [0, 1]
  // Codes for images (n x input): vae samples q(z|x), catvae draws each group's category from
  // softmax(logits), aae's encoder is deterministic. `step` varies the draw along a chain.
  virtual std::vector<float> reencode(const std::vector<float>& images, uint64_t seed, int64_t step) = 0;
};

// MCMC sampling (Arulkumaran et al. 2016): n images decoded from prior codes, then `steps` times
// re-encoded and decoded again. Returns the images after every step: [0] the plain samples.
std::vector<std::vector<float>> mcmc_chain(Generative& model, int64_t n, int steps, double std, uint64_t seed);

// The denoising models' corruption of batch.x as config.noise and noise_level say (models/
// denoising.cpp): graph ops keyed by batch.step, or batch.corrupted for the affine noise, which
// corrupt_affine() makes on the host.
Value corrupt(const ModelConfig& config, const Batch& batch);
// The same for an explicit noise kind and level (corrupt() passes config.noise, noise_level).
Value corrupt(const ModelConfig& config, const Batch& batch, const std::string& noise, double level);
void corrupt_affine(const ModelConfig& config, const float* clean, float* out, int64_t rows, int dim, int64_t step);

// The optimiser a variant trains with unless told otherwise: Adam for the VAE, the
// convolutional models, wta and seq2seq (as their references do), Adagrad (the tutorial's) for the rest.
std::string default_optimiser(const std::string& kind);
bool is_conv_kind(const std::string& kind);  // conv, upconv, convdae
bool is_denoising_kind(const std::string& kind);  // dae, convdae: their own --noise
// The element-wise gradient clamp a variant trains with unless told otherwise (OptimConfig::
// grad_clamp): 10 for seq2seq (Kaixhin's Seq2SeqAE), 0 (off) for the rest.
double default_grad_clamp(const std::string& kind);

// Builds the variant config.kind (config is resolved() first) with its parameters on `device`.
std::unique_ptr<Model> make_model(const ModelConfig& config, Device device, DType dtype = DType::f32);

// The variant names make_model accepts, for help texts.
const std::vector<std::string>& model_kinds();

}  // namespace ag::models
