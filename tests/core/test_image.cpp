// Forward values of the image ops against direct loops written from their definitions (in
// double), on the shapes the convolutional models use and on odd ones; a float convolution is
// held to the rounding bound of its sum, gamma_{K+1} sum |w x|, with K its number of terms. Plus
// the contract's determinism (the same bits on 1, 2 and 3 threads), ties and NaN in pooling,
// and shape errors that name the op.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "graph/aegraph.h"

using namespace ag;

namespace {

std::vector<float> pattern(int64_t n, int seed) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(std::sin(0.37 * double(i) + 1.3 * seed) * (1 + (i % 7) * 0.1));
  return v;
}

// One op of the graph run on the CPU: inputs given as float vectors, the output read back.
std::vector<float> run(const std::vector<Shape>& shapes, const std::vector<std::vector<float>>& data,
                       const std::function<Value(const std::vector<Value>&)>& build, Shape* out_shape = nullptr) {
  Graph g;
  std::vector<Value> in;
  for (size_t k = 0; k < shapes.size(); ++k) in.push_back(input(g, shapes[k], fmt::format("x{}", k)));
  Value y = build(in);
  Executor ex(compile({y}));
  for (size_t k = 0; k < in.size(); ++k) std::copy(data[k].begin(), data[k].end(), ex.input(in[k]).ptr<float>());
  ex.run();
  HostTensor h = ex.read(y);
  if (out_shape) *out_shape = h.shape();
  return std::vector<float>(h.ptr<float>(), h.ptr<float>() + h.numel());
}

struct Conv {
  int64_t n, c, h, w, f, kh, kw, s, p;
  int64_t oh() const { return (h + 2 * p - kh) / s + 1; }
  int64_t ow() const { return (w + 2 * p - kw) / s + 1; }
};

// The exact sums (and the sums of magnitudes) of the three convolutions, from their definitions.
struct Exact {
  std::vector<double> value, magnitude;
};

template <class F>
void each_term(const Conv& g, F f) {  // f(x index, w index, y index) for every product of the convolution
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t fo = 0; fo < g.f; ++fo)
      for (int64_t i = 0; i < g.oh(); ++i)
        for (int64_t j = 0; j < g.ow(); ++j)
          for (int64_t c = 0; c < g.c; ++c)
            for (int64_t u = 0; u < g.kh; ++u)
              for (int64_t v = 0; v < g.kw; ++v) {
                const int64_t r = i * g.s - g.p + u, q = j * g.s - g.p + v;
                if (r < 0 || r >= g.h || q < 0 || q >= g.w) continue;
                f(((n * g.c + c) * g.h + r) * g.w + q, ((fo * g.c + c) * g.kh + u) * g.kw + v,
                  ((n * g.f + fo) * g.oh() + i) * g.ow() + j);
              }
}

// |got - exact| <= gamma_(terms + 1) sum |products| (Higham's bound for a sum of products), times
// `factor` for sums taken another way (Winograd's: see winograd_factor).
void check_within_bound(const std::vector<float>& got, const Exact& e, int64_t terms, double factor = 1) {
  REQUIRE(got.size() == e.value.size());
  const double u = std::ldexp(1.0, -24), gamma = factor * double(terms + 1) * u / (1 - double(terms + 1) * u);
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - e.value[i]) / (gamma * e.magnitude[i] + 1e-30));
  INFO("worst error in units of the bound: " << worst);
  CHECK(worst <= 1.0);
}

// Winograd F(2x2, 3x3) sums 16 transformed products per channel, not the 9 taps: each product
// passes through the input, filter and output transforms, whose infinity norms are 2, 1.5 and 3
// along each axis, so the sum of the magnitudes it rounds is at most (2 x 1.5 x 3)^2 = 81 times
// the direct sum's (and its sums over channels are shorter than the bound's terms).
// (Measured on the rows below: within 0.07 of the direct bound itself.)
constexpr double winograd_factor = 81;

void check_conv(const Conv& g, double factor = 1) {
  INFO("x [" << g.n << ", " << g.c << ", " << g.h << ", " << g.w << "], w [" << g.f << ", " << g.c << ", " << g.kh
             << ", " << g.kw << "], stride " << g.s << ", padding " << g.p);
  const Shape xs{g.n, g.c, g.h, g.w}, ws{g.f, g.c, g.kh, g.kw}, ys{g.n, g.f, g.oh(), g.ow()}, bs{g.f};
  const std::vector<float> x = pattern(xs.numel(), 1), w = pattern(ws.numel(), 2), y = pattern(ys.numel(), 3),
                           b = pattern(g.f, 4);
  // conv2d with bias.
  Exact fwd{std::vector<double>(size_t(ys.numel())), std::vector<double>(size_t(ys.numel()))};
  for (int64_t k = 0; k < ys.numel(); ++k) {
    const int64_t fo = (k / (g.oh() * g.ow())) % g.f;
    fwd.value[size_t(k)] = b[size_t(fo)];
    fwd.magnitude[size_t(k)] = std::abs(b[size_t(fo)]);
  }
  each_term(g, [&](int64_t xi, int64_t wi, int64_t yi) {
    fwd.value[size_t(yi)] += double(x[size_t(xi)]) * w[size_t(wi)];
    fwd.magnitude[size_t(yi)] += std::abs(double(x[size_t(xi)]) * w[size_t(wi)]);
  });
  Shape got_shape;
  std::vector<float> got = run({xs, ws, bs}, {x, w, b},
                               [&](auto& in) { return conv2d(in[0], in[1], in[2], g.s, g.p); }, &got_shape);
  CHECK(got_shape == ys);
  check_within_bound(got, fwd, g.c * g.kh * g.kw, factor);

  // Its transpose with a bias, from a map-shaped input back to the image: x' = bias + sum over
  // the same terms of w y.
  const std::vector<float> bc = pattern(g.c, 5);
  Exact back{std::vector<double>(size_t(xs.numel())), std::vector<double>(size_t(xs.numel()))};
  for (int64_t k = 0; k < xs.numel(); ++k) {
    const int64_t ch = (k / (g.h * g.w)) % g.c;
    back.value[size_t(k)] = bc[size_t(ch)];
    back.magnitude[size_t(k)] = std::abs(bc[size_t(ch)]);
  }
  each_term(g, [&](int64_t xi, int64_t wi, int64_t yi) {
    back.value[size_t(xi)] += double(y[size_t(yi)]) * w[size_t(wi)];
    back.magnitude[size_t(xi)] += std::abs(double(y[size_t(yi)]) * w[size_t(wi)]);
  });
  const int64_t extra_h = g.h - ((g.oh() - 1) * g.s - 2 * g.p + g.kh), extra_w = g.w - ((g.ow() - 1) * g.s - 2 * g.p + g.kw);
  if (extra_h == extra_w) {  // the public op takes one output padding for both axes
    got = run({ys, ws, Shape{g.c}}, {y, w, bc},
              [&](auto& in) { return conv_transpose2d(in[0], in[1], in[2], g.s, g.p, extra_h); }, &got_shape);
    CHECK(got_shape == xs);
    check_within_bound(got, back, g.f * g.kh * g.kw, factor);
  }

  // The filter product: w' = sum over the same terms of x y.
  Exact filt{std::vector<double>(size_t(ws.numel())), std::vector<double>(size_t(ws.numel()))};
  each_term(g, [&](int64_t xi, int64_t wi, int64_t yi) {
    filt.value[size_t(wi)] += double(x[size_t(xi)]) * y[size_t(yi)];
    filt.magnitude[size_t(wi)] += std::abs(double(x[size_t(xi)]) * y[size_t(yi)]);
  });
  got = run({xs, ys}, {x, y}, [&](auto& in) { return conv2d_filter_grad(in[0], in[1], g.kh, g.kw, g.s, g.p); },
            &got_shape);
  CHECK(got_shape == ws);
  check_within_bound(got, filt, g.n * g.oh() * g.ow(), factor);
}

}  // namespace

TEST_CASE("convolutions, their transposes and filter products match their definitions", "[image]") {
  // Every shape on both CPU paths: the direct loops where they apply, and unfolded + OpenBLAS.
  const bool direct = GENERATE(true, false);
  INFO((direct ? "direct loops allowed" : "unfolded + OpenBLAS only"));
  set_cpu_direct_convolutions(direct);
  // Direct loops (stride 1, more than one input channel).
  check_conv({2, 16, 15, 15, 8, 3, 3, 1, 1});   // a middle layer of the conv models
  check_conv({2, 8, 16, 16, 16, 3, 3, 1, 0});   // unpadded (16 -> 14)
  check_conv({2, 32, 7, 7, 5, 3, 3, 1, 1});     // output channels not a multiple of 4
  check_conv({2, 16, 28, 28, 1, 3, 3, 1, 1});   // one output channel (the decoders' last layer)
  check_conv({17, 4, 6, 6, 5, 1, 1, 1, 0});     // 1x1 filters, groups of 8 images
  check_conv({2, 3, 9, 11, 4, 3, 2, 1, 1});     // a 3x2 filter on a non-square image
  // Winograd F(2x2, 3x3) (stride 1, 3x3, input and output channels multiples of 16): odd and
  // even sizes (tiles past the edge), padding 0 to 2, groups of 8 images, 48 outputs (a block of
  // 32 and one of 16).
  const double wf = direct ? winograd_factor : 1;
  check_conv({2, 32, 15, 15, 32, 3, 3, 1, 1}, wf);  // convdae's second layer
  check_conv({9, 16, 7, 6, 16, 3, 3, 1, 0}, wf);
  check_conv({2, 16, 14, 14, 48, 3, 3, 1, 2}, wf);
  check_conv({3, 48, 5, 9, 16, 3, 3, 1, 1}, wf);
  // Unfolded + OpenBLAS.
  check_conv({3, 1, 28, 28, 16, 3, 3, 1, 1});   // the conv models' first layer (one input channel)
  check_conv({17, 1, 6, 6, 12, 1, 1, 1, 0});    // 1x1 filters on one channel: the image is its own unfolding
  check_conv({2, 3, 6, 6, 4, 3, 3, 1, 3});      // padding as large as the filter
  check_conv({2, 8, 16, 16, 1, 4, 4, 2, 3});    // kernel 4, stride 2, padding 3, as upconv's last layer
  check_conv({2, 3, 9, 11, 4, 3, 2, 2, 1});     // stride 2, odd and non-square
  check_conv({2, 2, 8, 8, 3, 3, 3, 3, 1});      // stride 3: output padding 1 in both axes
  check_conv({2, 3, 11, 11, 4, 4, 4, 2, 0});    // stride 2, output padding 1: the transpose's last row and column no phase reaches
  set_cpu_direct_convolutions(true);
}

TEST_CASE("image ops give the same bits on 1, 2 and 3 threads", "[image]") {
  // Direct loops (4 -> 6 channels), then Winograd (16 -> 16), and the transposed convolution a
  // convolution of an upsampling becomes (16 -> 6).
  const int64_t c = GENERATE(4, 16), f = c == 4 ? 6 : 16;
  const Shape xs{20, c, 12, 12}, ws{f, c, 3, 3}, vs{6, f, 3, 3};
  const std::vector<float> x = pattern(xs.numel(), 5), w = pattern(ws.numel(), 6), v = pattern(vs.numel(), 7);
  auto step = [&](const std::vector<Value>& in) {
    Value y = conv2d(in[0], in[1], {}, 1, 1);
    Value pooled = max_pool2d(relu(y), 2, 2, 1);
    Value up = upsample_nearest2d(pooled, 2);
    Value loss = sum(square(conv2d(up, in[2], {}, 1, 1)));
    std::vector<Value> g = grad(loss, {in[0], in[1], in[2]});
    return concat({reshape(g[0], {xs.numel()}), reshape(g[1], {ws.numel()}), reshape(g[2], {vs.numel()})}, 0);
  };
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    results.push_back(run({xs, ws, vs}, {x, w, v}, step));
  }
  set_num_threads(0);
  CHECK(results[0] == results[1]);
  CHECK(results[0] == results[2]);
}

TEST_CASE("max pooling takes the first largest key, NaN wins, and padding is never chosen", "[image]") {
  // One 4x4 plane: a tie of 5s in the first window, a NaN in the second, negatives beside the padding.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> keys = {5, 1, 2, nan,  //
                                   5, 5, 0, 3,    //
                                   -4, -3, -2, -1,  //
                                   -5, -6, -7, -8};
  std::vector<float> values(16);
  for (int i = 0; i < 16; ++i) values[size_t(i)] = float(100 + i);
  const Shape s{1, 1, 4, 4};
  // Kernel 2, stride 2, no padding: windows {0,1,4,5} {2,3,6,7} {8,9,12,13} {10,11,14,15}.
  std::vector<float> got = run({s, s}, {keys, values}, [](auto& in) { return max_pool2d_at(in[0], in[1], 2, 2, 0); });
  CHECK(got == std::vector<float>{100, 103, 109, 111});
  // Padding 1: 3x3 outputs; the corner windows hold one real pixel each, never the padding.
  Shape out;
  got = run({s, s}, {keys, values}, [](auto& in) { return max_pool2d_at(in[0], in[1], 2, 2, 1); }, &out);
  CHECK(out == Shape{1, 1, 3, 3});
  CHECK(got == std::vector<float>{100, 102, 103, 104, 105, 107, 112, 113, 115});
  // The scatter is the adjoint: g lands on the chosen positions, overlapping windows add up.
  const std::vector<float> g = {1, 2, 3, 4};
  got = run({s, Shape{1, 1, 2, 2}}, {keys, g}, [](auto& in) { return max_unpool2d(in[0], in[1], 2, 2, 0); });
  CHECK(got == std::vector<float>{1, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0});
  got = run({s, s}, {keys, pattern(16, 0)}, [](auto& in) { return max_unpool2d(in[0], in[1], 3, 1, 1); });
  double total = 0, expected = 0;
  for (float v : got) total += v;
  for (float v : pattern(16, 0)) expected += v;
  CHECK(total == Approx(expected).epsilon(1e-6));  // every window's g lands somewhere in the plane
}

// Max pooling and its scatter against their definitions on many geometries (the CPU has a vector
// path for 2x2 windows at stride 2, rows of up to 128 windows, and a general one for the rest):
// keys drawn from five values, so that most windows hold ties.
TEST_CASE("max pooling and unpooling match their definitions on odd and padded planes", "[image]") {
  struct Pool {
    int64_t h, w, k, s, p;
  };
  for (const Pool& q : {Pool{28, 28, 2, 2, 1}, Pool{15, 15, 2, 2, 1}, Pool{15, 15, 2, 2, 0}, Pool{8, 8, 2, 2, 1},
                        Pool{7, 9, 2, 2, 1}, Pool{6, 5, 2, 2, 0}, Pool{2, 2, 2, 2, 1}, Pool{3, 41, 2, 2, 1},
                        Pool{2, 300, 2, 2, 0}, Pool{9, 8, 3, 2, 1}, Pool{6, 7, 3, 1, 1}}) {
    CAPTURE(q.h, q.w, q.k, q.s, q.p);
    const int64_t planes = 6, oh = (q.h + 2 * q.p - q.k) / q.s + 1, ow = (q.w + 2 * q.p - q.k) / q.s + 1;
    const Shape image{2, 3, q.h, q.w}, pooled{2, 3, oh, ow};
    std::vector<float> keys = pattern(planes * q.h * q.w, 3), values = pattern(planes * q.h * q.w, 4);
    for (float& k : keys) k = std::round(k * 2);  // -2 .. 2
    const std::vector<float> g = pattern(planes * oh * ow, 5);
    std::vector<float> want_pool(size_t(planes * oh * ow)), want_unpool(keys.size(), 0.0f);
    for (int64_t pl = 0; pl < planes; ++pl)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          int64_t best = -1;
          for (int64_t r = i * q.s - q.p; r < i * q.s - q.p + q.k; ++r)
            for (int64_t c = j * q.s - q.p; c < j * q.s - q.p + q.k; ++c) {
              if (r < 0 || r >= q.h || c < 0 || c >= q.w) continue;
              const int64_t at = (pl * q.h + r) * q.w + c;
              if (best < 0 || keys[size_t(at)] > keys[size_t(best)]) best = at;
            }
          const int64_t o = (pl * oh + i) * ow + j;
          want_pool[size_t(o)] = values[size_t(best)];
          want_unpool[size_t(best)] += g[size_t(o)];
        }
    CHECK(run({image, image}, {keys, values}, [&](auto& in) { return max_pool2d_at(in[0], in[1], q.k, q.s, q.p); }) ==
          want_pool);
    CHECK(run({image, pooled}, {keys, g}, [&](auto& in) { return max_unpool2d(in[0], in[1], q.k, q.s, q.p); }) ==
          want_unpool);
  }
}

TEST_CASE("a 3x3 convolution of an upsampling by 2 runs as a transposed convolution, same values and gradients",
          "[image]") {
  struct Case {
    Shape x, w;
  };
  // Odd sizes, one output channel (the decoders' last layer), and 16 -> 16 channels (Winograd's
  // shape: left as a convolution of the upsampled image).
  for (const Case& k : {Case{{2, 3, 5, 4}, {2, 3, 3, 3}}, Case{{3, 8, 7, 7}, {1, 8, 3, 3}}, Case{{2, 16, 4, 3}, {16, 16, 3, 3}}}) {
    INFO("x " << k.x.str() << ", w " << k.w.str());
    const bool winograd = k.w[0] % 16 == 0;
    const Shape bs{k.w[0]}, ys{k.x[0], k.w[0], 2 * k.x[2], 2 * k.x[3]};
    const std::vector<std::vector<float>> data = {pattern(k.x.numel(), 1), pattern(k.w.numel(), 2),
                                                   pattern(bs.numel(), 3), pattern(ys.numel(), 4)};
    // Values, then the gradients in x, w and b of <y, r>, end to end.
    auto all = [&](bool rewritten) {
      OpCode op = OpCode::input;
      std::vector<float> out = run({k.x, k.w, bs, ys}, data, [&](auto& in) {
        Value up = upsample_nearest2d(in[0], 2);
        Value y = conv2d(rewritten ? up : affine(up, 1, 0), in[1], in[2], 1, 1);  // affine: not an upsampling
        op = y.op();
        std::vector<Value> g = grad(sum(y * in[3]), {in[0], in[1], in[2]});
        return concat({reshape(y, {ys.numel()}), reshape(g[0], {k.x.numel()}), reshape(g[1], {k.w.numel()}), g[2]}, 0);
      });
      return std::make_pair(out, op);
    };
    const auto [got, got_op] = all(true);
    const auto [want, want_op] = all(false);
    CHECK(want_op == OpCode::conv2d);
    CHECK(got_op == (winograd ? OpCode::conv2d : OpCode::conv_transpose2d));
    REQUIRE(got.size() == want.size());
    // The same sums in another order (taps added first): float rounding of sums of a few
    // hundred terms of size ~1.
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(1e-4).epsilon(1e-5));
  }
}

TEST_CASE("nearest upsampling repeats pixels and the block sum adds them back", "[image]") {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};
  std::vector<float> up = run({Shape{1, 1, 2, 3}}, {x}, [](auto& in) { return upsample_nearest2d(in[0], 2); });
  CHECK(up == std::vector<float>{1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6});
  std::vector<float> back = run({Shape{1, 1, 4, 6}}, {up}, [](auto& in) { return sum_pool2d(in[0], 2); });
  CHECK(back == std::vector<float>{4, 8, 12, 16, 20, 24});
}

TEST_CASE("image ops reject shapes they cannot take, naming the op and the shapes", "[image]") {
  Graph g;
  Value x = input(g, {2, 3, 8, 8}, "x"), flat = input(g, {2, 192}, "flat");
  auto throws_with = [](auto f, const std::string& text) {
    try {
      f();
      FAIL("no error");
    } catch (const Error& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(text) != std::string::npos);
    }
  };
  throws_with([&] { conv2d(flat, input(g, {4, 3, 3, 3}, "w")); }, "conv2d");
  throws_with([&] { conv2d(x, input(g, {4, 2, 3, 3}, "w")); }, "channels");
  throws_with([&] { conv2d(x, input(g, {4, 3, 3, 3}, "w"), input(g, {3}, "b")); }, "bias");
  throws_with([&] { conv2d(x, input(g, {4, 3, 9, 9}, "w")); }, "smaller than the filter");
  throws_with([&] { conv_transpose2d(x, input(g, {3, 2, 3, 3}, "w"), {}, 2, 1, 2); }, "output padding");
  throws_with([&] { max_pool2d(x, 2, 2, 2); }, "more than half");
  throws_with([&] { max_unpool2d(x, input(g, {2, 3, 3, 3}, "g"), 2, 2, 0); }, "pooled shape");
  throws_with([&] { sum_pool2d(input(g, {1, 1, 5, 4}, "odd"), 2); }, "divide");
  throws_with([&] { conv2d_filter_grad(x, input(g, {2, 4, 5, 5}, "y"), 3, 3, 1, 1); }, "not the map");
}
