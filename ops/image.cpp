// Image ops on NCHW tensors: convolution, its transpose and its filter product; max pooling and
// the scatter that is its gradient; nearest upsampling and the block sum that is its gradient.
// Every backward rule is made of these same ops, so each differentiates again: the three
// convolutions are (bi)linear and close under differentiation, as do max_pool2d_at and
// max_unpool2d, and upsample_nearest2d and sum_pool2d. Geometry: ops/image.h.
#include <algorithm>

#include <fmt/format.h>

#include "ops/image.h"
#include "ops/ops.h"
#include "ops/registry.h"

namespace ag {

namespace {

void need_images(const Node& n, const Shape* in, int count) {
  for (int k = 0; k < count; ++k)
    if (in[k].rank != 4) shape_error(n, in, fmt::format("input {} must be [N, C, H, W]", k));
}

void need_window(const Node& n, const Shape* in, int64_t kernel, int64_t stride, int64_t pad) {
  if (kernel < 1 || stride < 1 || pad < 0)
    shape_error(n, in, fmt::format("kernel {}, stride {}, padding {}: need kernel >= 1, stride >= 1, padding >= 0",
                                   kernel, stride, pad));
}

void need_bias(const Node& n, const Shape* in, int64_t channels) {
  if (n.in.size() == 3 && !(in[2].rank == 1 && in[2][0] == channels))
    shape_error(n, in, fmt::format("bias must be [{}], one per output channel", channels));
}

// conv2d: x [N, C, H, W], w [F, C, kh, kw], optional b [F] -> [N, F, oh, ow].
Shape conv2d_rule(const Node& n, const Shape* in) {
  if (n.in.size() != 2 && n.in.size() != 3) shape_error(n, in, "takes x, w and an optional bias");
  need_images(n, in, 2);
  const int64_t s = n.attrs.i[0], p = n.attrs.i[1];
  need_window(n, in, std::min(in[1][2], in[1][3]), s, p);
  if (in[0][1] != in[1][1])
    shape_error(n, in, fmt::format("x has {} channels, the filters expect {}", in[0][1], in[1][1]));
  const int64_t oh = window_out(in[0][2], in[1][2], s, p), ow = window_out(in[0][3], in[1][3], s, p);
  if (oh < 1 || ow < 1) shape_error(n, in, fmt::format("the image (padding {}) is smaller than the filter", p));
  need_bias(n, in, in[1][0]);
  return Shape{in[0][0], in[1][0], oh, ow};
}

// conv_transpose2d: y [N, Cin, H, W], w [Cin, Cout, kh, kw], optional b [Cout]
// -> [N, Cout, (H - 1) s - 2 p + kh + a, (W - 1) s - 2 p + kw + b], 0 <= a, b < s.
Shape conv_transpose2d_rule(const Node& n, const Shape* in) {
  if (n.in.size() != 2 && n.in.size() != 3) shape_error(n, in, "takes x, w and an optional bias");
  need_images(n, in, 2);
  const int64_t s = n.attrs.i[0], p = n.attrs.i[1], a = n.attrs.i[2], b = n.attrs.i[3];
  need_window(n, in, std::min(in[1][2], in[1][3]), s, p);
  if (in[0][1] != in[1][0])
    shape_error(n, in, fmt::format("x has {} channels, the filters expect {}", in[0][1], in[1][0]));
  if (a < 0 || b < 0 || a >= s || b >= s)
    shape_error(n, in, fmt::format("output padding ({}, {}) must be at least 0 and below the stride {}", a, b, s));
  const int64_t oh = (in[0][2] - 1) * s - 2 * p + in[1][2] + a, ow = (in[0][3] - 1) * s - 2 * p + in[1][3] + b;
  if (oh < 1 || ow < 1) shape_error(n, in, fmt::format("padding {} leaves no output", p));
  need_bias(n, in, in[1][1]);
  return Shape{in[0][0], in[1][1], oh, ow};
}

// conv2d_filter_grad: x [N, C, H, W], y [N, F, oh, ow] -> [F, C, kh, kw].
Shape filter_grad_rule(const Node& n, const Shape* in) {
  need_images(n, in, 2);
  const int64_t s = n.attrs.i[0], p = n.attrs.i[1], kh = n.attrs.i[2], kw = n.attrs.i[3];
  need_window(n, in, std::min(kh, kw), s, p);
  if (in[0][0] != in[1][0]) shape_error(n, in, "x and y hold different numbers of images");
  if (window_out(in[0][2], kh, s, p) != in[1][2] || window_out(in[0][3], kw, s, p) != in[1][3])
    shape_error(n, in, fmt::format("y is not the map of a {}x{} filter, stride {}, padding {} over x", kh, kw, s, p));
  return Shape{in[1][1], in[0][1], kh, kw};
}

// The sum of g over images and positions: the gradient of a per-channel bias.
Value channel_sum(Value g) {
  const Shape& s = g.shape();
  return sum(sum(reshape(g, {s[0], s[1], s[2] * s[3]}), 2), 0);
}

// The transpose of a convolution, sized to give back an image of `image`'s height and width.
Value transpose_to(Value y, Value w, int64_t stride, int64_t pad, const Shape& image) {
  Attrs a;
  a.i[0] = stride;
  a.i[1] = pad;
  a.i[2] = image[2] - ((y.shape()[2] - 1) * stride - 2 * pad + w.shape()[2]);
  a.i[3] = image[3] - ((y.shape()[3] - 1) * stride - 2 * pad + w.shape()[3]);
  return y.graph->add(OpCode::conv_transpose2d, {y, w}, a);
}

// y = conv(x, w): dx = conv^T(g, w), dw = filter_grad(x, g), db = channel sums of g.
void bw_conv2d(const Value& y, const Value& g, Value* d) {
  const Attrs& a = y.node().attrs;
  Value x = y.input(0), w = y.input(1);
  d[0] = transpose_to(g, w, a.i[0], a.i[1], x.shape());
  d[1] = conv2d_filter_grad(x, g, w.shape()[2], w.shape()[3], a.i[0], a.i[1]);
  if (y.node().in.size() == 3) d[2] = channel_sum(g);
}

// x = conv^T(y, w) is the adjoint of conv(., w): dy = conv(g, w), dw = filter_grad(g, y).
void bw_conv_transpose2d(const Value& x, const Value& g, Value* d) {
  const Attrs& a = x.node().attrs;
  Value y = x.input(0), w = x.input(1);
  d[0] = conv2d(g, w, {}, a.i[0], a.i[1]);
  d[1] = conv2d_filter_grad(g, y, w.shape()[2], w.shape()[3], a.i[0], a.i[1]);
  if (x.node().in.size() == 3) d[2] = channel_sum(g);
}

// W = filter_grad(x, y) satisfies <G, W> = <y, conv(x, G)> = <x, conv^T(y, G)>.
void bw_filter_grad(const Value& out, const Value& g, Value* d) {
  const Attrs& a = out.node().attrs;
  Value x = out.input(0), y = out.input(1);
  d[0] = transpose_to(y, g, a.i[0], a.i[1], x.shape());
  d[1] = conv2d(x, g, {}, a.i[0], a.i[1]);
}

// Pooling windows: kernel k, stride s, padding p <= k / 2 (as PyTorch requires).
int64_t pooled(const Node& n, const Shape* in, int64_t len) {
  const int64_t s = n.attrs.i[0], p = n.attrs.i[1], k = n.attrs.i[2];
  need_window(n, in, k, s, p);
  if (2 * p > k) shape_error(n, in, fmt::format("padding {} is more than half the kernel {}", p, k));
  const int64_t out = window_out(len, k, s, p);
  if (out < 1) shape_error(n, in, fmt::format("the image (padding {}) is smaller than the kernel {}", p, k));
  return out;
}

// max_pool2d_at: keys and values [N, C, H, W] -> [N, C, oh, ow], in each window the value at
// the position of the largest key (the first in row-major order on ties).
Shape max_pool_rule(const Node& n, const Shape* in) {
  need_images(n, in, 2);
  if (in[0] != in[1]) shape_error(n, in, "keys and values must have the same shape");
  return Shape{in[0][0], in[0][1], pooled(n, in, in[0][2]), pooled(n, in, in[0][3])};
}

// max_unpool2d: keys [N, C, H, W], g [N, C, oh, ow] -> keys' shape: each window's g added at
// its largest key's position.
Shape max_unpool_rule(const Node& n, const Shape* in) {
  need_images(n, in, 2);
  const Shape want{in[0][0], in[0][1], pooled(n, in, in[0][2]), pooled(n, in, in[0][3])};
  if (in[1] != want) shape_error(n, in, fmt::format("g must be the pooled shape {}", want.str()));
  return in[0];
}

Attrs pool_attrs(int64_t kernel, int64_t stride, int64_t padding) {
  Attrs a;
  a.i[0] = stride;
  a.i[1] = padding;
  a.i[2] = kernel;
  return a;
}

// The keys only choose positions: the gradient flows to the values (and back through g).
void bw_max_pool(const Value& y, const Value& g, Value* d) {
  const Attrs& a = y.node().attrs;
  d[1] = max_unpool2d(y.input(0), g, a.i[2], a.i[0], a.i[1]);
}
void bw_max_unpool(const Value& y, const Value& g, Value* d) {
  const Attrs& a = y.node().attrs;
  d[1] = max_pool2d_at(y.input(0), g, a.i[2], a.i[0], a.i[1]);
}

Shape upsample_rule(const Node& n, const Shape* in) {
  need_images(n, in, 1);
  const int64_t s = n.attrs.i[0];
  if (s < 1) shape_error(n, in, fmt::format("scale {} must be at least 1", s));
  return Shape{in[0][0], in[0][1], in[0][2] * s, in[0][3] * s};
}

Shape sum_pool_rule(const Node& n, const Shape* in) {
  need_images(n, in, 1);
  const int64_t s = n.attrs.i[0];
  if (s < 1 || in[0][2] % s != 0 || in[0][3] % s != 0)
    shape_error(n, in, fmt::format("scale {} must be at least 1 and divide the height and width", s));
  return Shape{in[0][0], in[0][1], in[0][2] / s, in[0][3] / s};
}

void bw_upsample(const Value& y, const Value& g, Value* d) { d[0] = sum_pool2d(g, y.node().attrs.i[0]); }
void bw_sum_pool(const Value& y, const Value& g, Value* d) { d[0] = upsample_nearest2d(g, y.node().attrs.i[0]); }

Attrs conv_attrs(int64_t stride, int64_t padding, int64_t a = 0, int64_t b = 0) {
  Attrs at;
  at.i[0] = stride;
  at.i[1] = padding;
  at.i[2] = a;
  at.i[3] = b;
  return at;
}

}  // namespace

void register_image_ops(OpInfo* t) {
  set_op(t, OpCode::conv2d, OpKind::image, -1, true, conv2d_rule, bw_conv2d);
  set_op(t, OpCode::conv_transpose2d, OpKind::image, -1, true, conv_transpose2d_rule, bw_conv_transpose2d);
  set_op(t, OpCode::conv2d_filter_grad, OpKind::image, 2, true, filter_grad_rule, bw_filter_grad);
  set_op(t, OpCode::max_pool2d_at, OpKind::image, 2, false, max_pool_rule, bw_max_pool);
  set_op(t, OpCode::max_unpool2d, OpKind::image, 2, false, max_unpool_rule, bw_max_unpool);
  set_op(t, OpCode::upsample_nearest2d, OpKind::image, 1, true, upsample_rule, bw_upsample);
  set_op(t, OpCode::sum_pool2d, OpKind::image, 1, true, sum_pool_rule, bw_sum_pool);
}

namespace {

// Taps of a 3-tap filter w seen through nearest upsampling by 2, as the 4 taps of a transposed
// convolution at stride 2, padding 1, along one axis: output 2i + a reads upsampled rows
// 2i + a - 1 .. 2i + a + 1, which are input rows {i - 1, i, i} (a = 0) or {i, i, i + 1} (a = 1),
// so input row m reaches outputs 2m - 1 .. 2m + 2 through taps w2, w1 + w2, w0 + w1, w0.
Value upsampled_taps(Value w, int axis) {
  auto tap = [&](int64_t k) { return slice(w, axis, k, 1); };
  return concat({tap(2), tap(1) + tap(2), tap(0) + tap(1), tap(0)}, axis);
}

}  // namespace

Value conv2d(Value x, Value w, Value b, int64_t stride, int64_t padding) {
  // A 3x3, padding-1 convolution of a nearest upsampling by 2 is a transposed convolution of
  // the small image (stride 2, padding 1) with 4x4 filters made of sums of the 3x3 taps: the
  // same values without the upsampled image (and its gradient), and 4 taps per output instead
  // of 9. The decoders of the conv models are written this way (conv after up x2); their
  // gradients follow, since the filters are graph values of w. Not for the layers the CPU runs
  // as Winograd on the upsampled image, which measured faster than the phase loops the
  // transpose runs on (docs/benchmarks.md).
  if (x.valid() && x.op() == OpCode::upsample_nearest2d && x.node().attrs.i[0] == 2 && stride == 1 && padding == 1 &&
      w.valid() && w.shape().rank == 4 && w.shape()[2] == 3 && w.shape()[3] == 3 && x.shape().rank == 4 &&
      w.shape()[1] == x.shape()[1] && w.dtype() == x.dtype() &&
      !winograd_shaped(w.shape()[1], w.shape()[0], 3, 3, stride, padding))
    return conv_transpose2d(x.input(0), transpose(upsampled_taps(upsampled_taps(w, 2), 3), 0, 1), b, 2, 1);
  if (b.valid()) return x.graph->add(OpCode::conv2d, {x, w, b}, conv_attrs(stride, padding));
  return x.graph->add(OpCode::conv2d, {x, w}, conv_attrs(stride, padding));
}

Value conv_transpose2d(Value x, Value w, Value b, int64_t stride, int64_t padding, int64_t output_padding) {
  const Attrs a = conv_attrs(stride, padding, output_padding, output_padding);
  if (b.valid()) return x.graph->add(OpCode::conv_transpose2d, {x, w, b}, a);
  return x.graph->add(OpCode::conv_transpose2d, {x, w}, a);
}

Value conv2d_filter_grad(Value x, Value y, int64_t kh, int64_t kw, int64_t stride, int64_t padding) {
  return x.graph->add(OpCode::conv2d_filter_grad, {x, y}, conv_attrs(stride, padding, kh, kw));
}

Value max_pool2d(Value x, int64_t kernel, int64_t stride, int64_t padding) {
  return max_pool2d_at(x, x, kernel, stride, padding);
}

Value max_pool2d_at(Value keys, Value values, int64_t kernel, int64_t stride, int64_t padding) {
  return keys.graph->add(OpCode::max_pool2d_at, {keys, values}, pool_attrs(kernel, stride, padding));
}

Value max_unpool2d(Value keys, Value g, int64_t kernel, int64_t stride, int64_t padding) {
  return keys.graph->add(OpCode::max_unpool2d, {keys, g}, pool_attrs(kernel, stride, padding));
}

Value upsample_nearest2d(Value x, int64_t scale) {
  Attrs a;
  a.i[0] = scale;
  return x.graph->add(OpCode::upsample_nearest2d, {x}, a);
}

Value sum_pool2d(Value x, int64_t scale) {
  Attrs a;
  a.i[0] = scale;
  return x.graph->add(OpCode::sum_pool2d, {x}, a);
}

}  // namespace ag
