// Plans: live buffers never overlap, in-place happens only over a dying source, reshape is free,
// assign elision gives the same numbers as an explicit copy, a read after an assign is refused,
// and a compiled step runs without allocating.
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <string>
#include <utility>
#include <vector>
#include <cstdlib>
#include <cstring>
#include <new>

#include "step_fixture.h"

using namespace ag;
using Catch::Matchers::Contains;

// Counting every operator new in this test binary: a compiled run must not add to it.
// (AddressSanitizer replaces operator new itself, so the sanitizer build does not count.)
static std::atomic<long> g_allocations{0};
#ifndef __SANITIZE_ADDRESS__
static void* counted_alloc(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace {

// Positions of the last step reading each node (outputs: past the end).
std::vector<int> last_uses(const Plan& p, const std::vector<Value>& outputs) {
  std::vector<int> last(size_t(p.graph->size()), -1);
  for (size_t k = 0; k < p.steps.size(); ++k)
    for (int src : p.graph->node(p.steps[k]).in) last[size_t(src)] = int(k);
  for (const Value& v : outputs) last[size_t(v.id)] = int(p.steps.size());
  return last;
}

// The tiny autoencoder's losses over five training steps, compiled with `opt`.
std::vector<double> losses(CompileOptions opt) {
  ag::testing::TinyAutoencoder m(8, 0.5f, 64, 8);
  Executor ex(compile(m.outputs(), opt));
  std::vector<double> out;
  for (int s = 0; s < 5; ++s) {
    ag::testing::make_batch(ex.input(m.x).ptr<float>(), 8, 64, s);
    ex.run();
    out.push_back(ex.read_scalar(m.loss));
  }
  return out;
}

}  // namespace

TEST_CASE("buffers that are live at the same time never overlap", "[plan]") {
  ag::testing::TinyAutoencoder m(16);
  CompileOptions options;
  options.fuse = GENERATE(false, true);
  options.pair_matmuls = GENERATE(false, true);
  Plan p = compile(m.outputs(), options);
  REQUIRE(p.buffers.size() > 3);
  for (size_t a = 0; a < p.buffers.size(); ++a)
    for (size_t b = a + 1; b < p.buffers.size(); ++b) {
      const PlanBuffer &x = p.buffers[a], &y = p.buffers[b];
      bool live_together = x.first <= y.last && y.first <= x.last;
      bool share_memory = x.offset < y.offset + y.bytes && y.offset < x.offset + x.bytes;
      INFO("buffers " << a << " and " << b);
      CHECK_FALSE((live_together && share_memory));
      CHECK(x.offset + x.bytes <= p.arena_bytes);
    }
  // Liveness-based reuse: the arena is smaller than all buffers laid end to end.
  int64_t total = 0;
  for (const PlanBuffer& b : p.buffers) total += (b.bytes + 255) / 256 * 256;
  if (!options.fuse) CHECK(p.arena_bytes < total);
}

TEST_CASE("in-place only over a source that dies at that step", "[plan]") {
  ag::testing::TinyAutoencoder m(16);
  std::vector<Value> outs = m.outputs();
  Plan p = compile(outs);
  std::vector<int> last = last_uses(p, outs);
  int in_place = 0;
  for (size_t k = 0; k < p.steps.size(); ++k) {
    int id = p.steps[k];
    if (!p.in_place[size_t(id)]) continue;
    ++in_place;
    bool found = false;
    for (int src : p.graph->node(id).in)
      if (p.buffer[size_t(src)] == p.buffer[size_t(id)]) {
        found = true;
        // Every node living in that buffer before this step is read for the last time here.
        for (int other = 0; other < id; ++other)
          if (p.buffer[size_t(other)] == p.buffer[size_t(id)]) CHECK(last[size_t(other)] <= int(k));
      }
    CHECK(found);
  }
  CHECK(in_place > 0);
}

namespace {

// Three training steps of the tutorial's shapes (784 -> 128, batch 150: sparse products, bands
// and pairs all run) on `threads` threads; the parameters after them, and how many products ran
// in pairs.
std::pair<std::vector<float>, int64_t> tutorial_steps(int threads, bool pair) {
  set_num_threads(threads);
  ag::testing::TinyAutoencoder m(150, 0.5f, 784, 128);
  CompileOptions options;
  options.pair_matmuls = pair;
  Executor ex(compile(m.outputs(), options));
  const int64_t before = cpu_paired_products();
  for (int s = 0; s < 3; ++s) {
    ag::testing::make_batch(ex.input(m.x).ptr<float>(), 150, 784, s);
    ex.run();
  }
  const int64_t paired = cpu_paired_products() - before;
  std::vector<float> params;
  for (int i = 0; i < m.store.count(); ++i) {
    const HostTensor t = m.store.read(i);
    params.insert(params.end(), t.ptr<float>(), t.ptr<float>() + t.numel());
  }
  set_num_threads(0);
  return {params, paired};
}

// The largest difference between two parameter vectors, relative to the largest parameter.
double max_difference(const std::vector<float>& x, const std::vector<float>& y) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    diff = std::max(diff, double(std::abs(x[i] - y[i])));
    scale = std::max(scale, double(std::abs(x[i])));
  }
  return diff / scale;
}

}  // namespace

TEST_CASE("training steps repeat their bits on a fixed thread count; paths and thread counts agree", "[plan][numbers]") {
  // The contract (docs/architecture.md, "Numbers"): the same build, machine, BLAS and thread
  // count give the same bits; pairs or not, 1, 2 or 3 threads, the steps agree within float
  // rounding carried through three steps (each product within its bound; measured: 8.4e-8 of
  // the largest parameter with OpenBLAS's Haswell kernels, 0 with SkylakeX's; the check allows
  // 1e-5).
  const auto [alone, none] = tutorial_steps(2, false);
  const auto [side_by_side, paired] = tutorial_steps(2, true);
  const auto [again, paired_again] = tutorial_steps(2, true);
  CHECK(none == 0);
  CHECK(paired >= 3 * 2);
  REQUIRE(alone.size() == side_by_side.size());
  CHECK(std::memcmp(side_by_side.data(), again.data(), again.size() * sizeof(float)) == 0);
  CHECK(max_difference(alone, side_by_side) < 1e-5);
  for (int threads : {1, 3}) {
    INFO(threads << " threads");
    const std::vector<float> other = tutorial_steps(threads, true).first;
    CHECK(max_difference(other, side_by_side) < 1e-5);
    CHECK(other == tutorial_steps(threads, true).first);
  }
}

TEST_CASE("assign elision and in-place give the same numbers as plain copies", "[plan]") {
  CompileOptions plain;
  plain.in_place = false;
  plain.elide_assign = false;
  plain.fuse = false;
  plain.pair_matmuls = false;
  CHECK(losses({}) == losses(plain));
}

TEST_CASE("elementwise chains fuse into one loop, and the update writes straight into the parameter", "[plan]") {
  ag::testing::TinyAutoencoder m(8, 0.5f, 64, 8);
  CompileOptions options;
  options.pair_matmuls = true;
  Plan p = compile(m.outputs(), options);
  int groups = 0, elided = 0;
  for (int id : p.steps) {
    if (p.fused_root(id)) {
      ++groups;
      std::vector<int> members = p.members(id);
      CHECK(members.size() >= 2);
      CHECK(int(members.size()) <= max_fused_ops);
      CHECK(members.back() == id);
      for (int mbr : members)  // in-loop values; an assign stores into its target
        if (mbr != id) CHECK(p.storage[size_t(mbr)] == (p.graph->node(mbr).op == OpCode::assign ? Storage::external : Storage::fused));
    }
    elided += p.elided[size_t(id)];
  }
  CHECK(groups >= 1);
  CHECK(elided == 4);  // every parameter's update
  // The decoder's dW and the hidden layer's gradient are independent products: paired.
  int pairs = 0;
  for (size_t k = 0; k < p.steps.size(); ++k)
    if (p.runs_with_next[k]) {
      ++pairs;
      CHECK(p.graph->node(p.steps[k]).op == OpCode::matmul);
      CHECK(p.graph->node(p.steps[k + 1]).op == OpCode::matmul);
    }
  CHECK(pairs >= 1);
}

namespace {

int fused_assigns(const Plan& p) {
  int k = 0;
  for (int id = 0; id < p.graph->size(); ++id)
    k += p.graph->node(id).op == OpCode::assign && p.group[size_t(id)] >= 0;
  return k;
}

// s <- s + x^2 (read back as s_new), w <- w - x / (sqrt(s_new) + 0.001): Adagrad's shape, over
// f32 memory; with other_offset, s's new value also adds half of state[other_offset, + n). Returns w and s after
// three runs.
// `fused` gets how many assigns the plan fused, `described` the plan.
std::pair<std::vector<float>, std::vector<float>> state_update(CompileOptions options, int other_offset = -1,
                                                               int* fused = nullptr, std::string* described = nullptr) {
  constexpr int64_t n = 3000;
  HostTensor state(Shape{2 * n}, DType::f32), w(Shape{n}, DType::f32);
  for (int64_t i = 0; i < 2 * n; ++i) state.set(i, 0.1 + 0.001 * double(i % 17));
  for (int64_t i = 0; i < n; ++i) w.set(i, std::sin(double(i)));
  Tensor s_view = state.view();  // s is state[1000, 1000 + n)
  s_view.shape = Shape{n};
  s_view.data = state.ptr<float>() + 1000;
  Graph g;
  Value x = input(g, {n}, "x");
  Value sv = external(g, s_view, "s"), wv = external(g, w.view(), "w");
  Value acc = sv + square(x);
  if (other_offset >= 0) {
    Tensor o = s_view;
    o.data = state.ptr<float>() + other_offset;
    acc = acc + external(g, o, "s_shifted") * 0.5f;
  }
  Value s_new = assign(sv, acc);
  Value w_new = assign(wv, wv - x / (sqrt(s_new) + 0.001f));
  Executor ex(compile({s_new, w_new}, options));
  if (fused) *fused = fused_assigns(ex.plan());
  if (described) *described = ex.plan().describe();
  for (int run = 0; run < 3; ++run) {
    float* px = ex.input(x).ptr<float>();
    for (int64_t i = 0; i < n; ++i) px[i] = float(std::cos(double(i + run)));
    ex.run();
  }
  std::vector<float> wo(static_cast<size_t>(n)), so(static_cast<size_t>(2 * n));
  for (int64_t i = 0; i < n; ++i) wo[size_t(i)] = float(w.at(i));
  for (int64_t i = 0; i < 2 * n; ++i) so[size_t(i)] = float(state.at(i));
  return {wo, so};
}

}  // namespace

TEST_CASE("a state's assign is stored inside its update's loop, unless the loop reads it through another view",
          "[plan]") {
  // With other_offset the new s also reads s shifted back by 100 elements: stored block by
  // block, each block would read what the one before it stored, so that assign must run as its
  // own step. Either way the numbers are those of plain copies.
  const int other_offset = GENERATE(-1, 900);
  CompileOptions plain;
  plain.fuse = false;
  plain.elide_assign = false;
  int n_fused = -1;
  std::string plan;
  const auto fused = state_update({}, other_offset, &n_fused, &plan);
  INFO("other_offset " << other_offset << "\n" << plan);
  CHECK(n_fused == (other_offset < 0 ? 1 : 0));
  CHECK(fused == state_update(plain, other_offset));
}

TEST_CASE("each update runs right after its gradient, with the numbers of the plain order", "[plan]") {
  ag::testing::TinyAutoencoder m(8, 0.5f, 64, 8);
  Plan p = compile(m.outputs());
  INFO(p.describe());
  // The decoder's weight (dec.weight, the third parameter) is updated before the encoder's
  // gradient is computed: right after the backward pass last reads it.
  std::vector<int> pos(size_t(p.graph->size()), -1);
  for (size_t k = 0; k < p.steps.size(); ++k) pos[size_t(p.steps[k])] = int(k);
  const int dec_update = m.updates[2].input(1).id, enc_grad = m.updates[0].input(1).input(1).input(0).id;
  REQUIRE(pos[size_t(dec_update)] >= 0);
  REQUIRE(pos[size_t(p.group[size_t(enc_grad)] >= 0 ? p.group[size_t(enc_grad)] : enc_grad)] >= 0);
  CHECK(pos[size_t(dec_update)] < pos[size_t(p.group[size_t(enc_grad)] >= 0 ? p.group[size_t(enc_grad)] : enc_grad)]);

  CompileOptions in_order;
  in_order.schedule_updates = false;
  CHECK(losses({}) == losses(in_order));
}

TEST_CASE("row and column broadcasts fuse into their consumer's loop, with the same numbers", "[plan]") {
  // [37, 300]: blocks of the fused loop start and end in the middle of rows.
  auto run = [](bool fuse, int* fused_broadcasts) {
    Graph g;
    Value x = input(g, {37, 300}, "x"), col = input(g, {37, 1}, "col"), row = input(g, {300}, "row");
    Value y = broadcast_to(col, {37, 300}) * x + broadcast_to(row, {37, 300});
    CompileOptions options;
    options.fuse = fuse;
    Executor ex(compile({y}, options));
    *fused_broadcasts = 0;
    for (int id = 0; id < g.size(); ++id)
      *fused_broadcasts += g.node(id).op == OpCode::broadcast_to && ex.plan().group[size_t(id)] >= 0;
    for (Value v : {x, col, row}) {
      float* p = ex.input(v).ptr<float>();
      for (int64_t i = 0; i < v.shape().numel(); ++i) p[i] = float(std::sin(1.7 * double(i) + double(v.id)));
    }
    ex.run();
    HostTensor out = ex.read(y);
    return std::vector<float>(out.ptr<float>(), out.ptr<float>() + out.numel());
  };
  int fused = 0, plain = 0;
  const std::vector<float> a = run(true, &fused), b = run(false, &plain);
  CHECK(fused == 2);
  CHECK(plain == 0);
  CHECK(a == b);
  CHECK(a[size_t(5 * 300 + 7)] == Approx(std::sin(1.7 * 5 + 1) * std::sin(1.7 * (5 * 300 + 7) + 0) + std::sin(1.7 * 7 + 2)).epsilon(1e-5));
}

TEST_CASE("reshape is an alias, not a copy", "[plan]") {
  Graph g;
  Value x = input(g, {4, 6}, "x");
  Value y = reshape(x * 2.0f, {24}) + 1.0f;
  Plan p = compile({y});
  int reshape_id = y.input(0).id;
  CHECK(p.alias_of[size_t(reshape_id)] >= 0);
}

TEST_CASE("reading a buffer after the assign that overwrites it is refused", "[plan]") {
  Graph g;
  HostTensor w(Shape{3}, DType::f32);
  Value wv = external(g, w.view(), "w");
  Value upd = assign(wv, wv * 2.0f);
  Value late = wv + 1.0f;  // reads the old w after the assign node
  CHECK_THROWS_WITH(compile({upd, late}), Contains("'w'") && Contains("after the assign"));
}

TEST_CASE("a compiled training step runs without allocating", "[plan]") {
#ifdef __SANITIZE_ADDRESS__
  WARN("allocation counting is off under AddressSanitizer; the Release build checks this");
  return;
#endif
  ag::testing::TinyAutoencoder m(32);
  Executor ex(compile(m.outputs()));
  ag::testing::make_batch(ex.input(m.x).ptr<float>(), 32, 784, 0);
  ex.run();  // warm up: thread pools start here
  long before = g_allocations.load();
  for (int s = 0; s < 10; ++s) ex.run();
  CHECK(g_allocations.load() == before);
}

// The image kernels too: every CPU path (unfolded one-channel layer, direct stride-1 loops, strided
// phases both ways, the filter gradients, pooling and upsampling) in one training step.
TEST_CASE("a compiled convolutional training step runs without allocating", "[plan][image]") {
#ifdef __SANITIZE_ADDRESS__
  WARN("allocation counting is off under AddressSanitizer; the Release build checks this");
  return;
#endif
  ParamStore store{Device::cpu, DType::f32, 1};
  Graph g;
  const std::vector<std::pair<const char*, Shape>> shapes = {
      {"c1.w", {4, 1, 3, 3}}, {"c1.b", {4}}, {"c2.w", {4, 4, 3, 3}}, {"c2.b", {4}},
      {"s.w", {4, 4, 4, 4}},  {"t.w", {4, 1, 4, 4}}, {"t.b", {1}}};
  for (const auto& [name, shape] : shapes) store.add(name, shape, Init::Uniform(-0.2f, 0.2f));
  std::vector<Value> ps;
  for (int i = 0; i < int(shapes.size()); ++i) ps.push_back(store.value(g, i));
  Value x = input(g, {12, 1, 16, 16}, "x");
  Value h = max_pool2d(relu(conv2d(x, ps[0], ps[1], 1, 1)), 2, 2, 1);         // 9 x 9
  h = upsample_nearest2d(relu(conv2d(h, ps[2], ps[3], 1, 1)), 2);             // 18 x 18
  h = relu(conv2d(h, ps[4], {}, 2, 1));                                       // 9 x 9
  Value logits = conv_transpose2d(h, ps[5], ps[6], 2, 2);                      // 16 x 16
  Value loss = bce_with_logits(reshape(logits, {12, 256}), reshape(x, {12, 256}));
  std::vector<Value> grads = grad(loss, ps), outs = {loss};
  for (size_t i = 0; i < ps.size(); ++i) outs.push_back(assign(ps[i], ps[i] - grads[i] * 0.1f));
  Executor ex(compile(outs));
  ag::testing::make_batch(ex.input(x).ptr<float>(), 12, 256, 0);
  ex.run();
  long before = g_allocations.load();
  for (int s = 0; s < 10; ++s) ex.run();
  CHECK(g_allocations.load() == before);
}
