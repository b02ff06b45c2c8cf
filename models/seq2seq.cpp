// The sequence-to-sequence LSTM autoencoder (Kaixhin's Seq2SeqAE): each 28x28 image is a
// sequence of 28 rows of 28 pixels. The encoder, a 2-layer LSTM of 256 units, reads the rows;
// the decoder, another 2-layer LSTM of 256 units, starts each layer from the encoder layer's
// final (h, c) and reads the image shifted down one row (a row of zeros first: teacher forcing);
// a Linear 256 -> 28 on every step's output gives the row's logits (reconstruction = sigmoid).
// BCE per pixel. The code (encode()) is the top encoder layer's final h.
// Free-running decoding feeds the decoder its own previous row, sigmoid(logits), from zeros:
// the test report shows its BCE beside the teacher-forced one.
#include <fmt/format.h>

#include "models/lstm.h"
#include "models/model.h"
#include "models/variants.h"

namespace ag::models {

namespace {

constexpr int layers = 2;

class Seq2Seq final : public Model {
 public:
  Seq2Seq(const ModelConfig& c, Device d, DType t)
      : Model(c, d, t),
        width_(row_width(c.sizes[0])),
        encoder_(params_, "encoder", width_, c.sizes[1], layers),
        decoder_(params_, "decoder", width_, c.sizes[1], layers),
        output_(params_, "output", c.sizes[1], width_) {}

  // Side of a square image: the row length, and the number of steps.
  static int row_width(int pixels) {
    int side = 0;
    while (side * side < pixels) ++side;
    if (side * side != pixels) throw Error(fmt::format("seq2seq: the input size {} is not a square image", pixels));
    return side;
  }

  Value loss(GraphParams& p, const Batch& batch, int) override {
    return bce_with_logits(teacher_forced(p, training_input(p, batch), batch.x), batch.x);
  }
  Value logits(GraphParams& p, Value x, int) override { return teacher_forced(p, x, x); }
  Value encode(GraphParams& p, Value x) override { return encoded(p, x).back().h; }
  std::vector<Metric> metrics(GraphParams& p, Value x) override {
    return {{"bce_free_running", "test BCE per pixel, free-running (the decoder fed its own rows)",
             bce_with_logits(free_running(p, x), x)}};
  }

 private:
  std::vector<LstmState> encoded(GraphParams& p, Value x) {
    std::vector<LstmState> state;
    encoder_(p, split_steps(x, width_), state);
    return state;
  }

  // The decoder reads `target` shifted down one row; each layer starts from the encoder's state.
  Value teacher_forced(GraphParams& p, Value x, Value target) {
    const int64_t b = x.shape()[0], pixels = x.shape()[1];
    std::vector<LstmState> state = encoded(p, x);
    Value shifted = pad(slice(target, 1, 0, pixels - width_), 1, width_, pixels);
    std::vector<Value> hs = decoder_(p, split_steps(shifted, width_), state);
    // Every step's output through the Linear layer as one product: [B, T * H] -> [B T, H].
    Value h = reshape(concat(hs, 1), {b * int64_t(hs.size()), decoder_.hidden()});
    return reshape(output_(p, h), {b, pixels});
  }

  Value free_running(GraphParams& p, Value x) {
    const int64_t b = x.shape()[0];
    std::vector<LstmState> state = encoded(p, x);
    const Lstm::Weights w = decoder_.weights(p);
    Value row = constant(*x.graph, 0.0, Shape{b, width_}, x.dtype());
    std::vector<Value> rows;
    for (int t = 0; t < width_; ++t) {
      rows.push_back(output_(p, decoder_.step(w, row, state)));
      row = sigmoid(rows.back());
    }
    return concat(rows, 1);
  }

  int width_;
  Lstm encoder_, decoder_;
  Linear output_;
};

}  // namespace

std::unique_ptr<Model> make_seq2seq(const ModelConfig& config, Device device, DType dtype) {
  return std::make_unique<Seq2Seq>(config, device, dtype);
}

}  // namespace ag::models
