// Fused groups compiled ahead of time: see compiled_groups.h.
//
// A group is written as the plan hands it to the backend (KernelCall): its inputs, each as
// large as the output ('x') or one value ('s'), and its ops in order, each operand an input
// (k >= 0) or an earlier op's result (k < 0: op -k - 1); an assign stores its value (operand b)
// into input a; the last op's result is the output. One template turns such a list into one
// loop over the elements, every op's result a local variable, which the compiler vectorises.
//
// Same bits as the interpreter: each op is the same functor on the same rounded floats. This
// file is compiled with -ffp-contract=off, so no multiply is fused into the add after it (the
// interpreter stores every op's result, which rounds it); the ops allowed in a group are the
// ones whose functors contain no multiply-add of their own (which the interpreter's build may
// contract), checked at compile time. tests/models/test_optim.cpp ("compiled optimiser updates
// give the interpreter's bits") compares the two bit for bit for every optimiser.
#include "backends/cpu/compiled_groups.h"

#include <omp.h>

#include <atomic>
#include <cstddef>
#include <utility>

#include <fmt/format.h>

#include "backends/cpu/loops.h"
#include "ops/functors.h"

namespace ag {

namespace {
std::atomic<bool> g_compiled_groups{true};
std::atomic<int64_t> g_compiled_group_runs{0};
}  // namespace

int64_t cpu_compiled_group_runs() { return g_compiled_group_runs.load(std::memory_order_relaxed); }
void set_cpu_compiled_groups(bool on) { g_compiled_groups.store(on, std::memory_order_relaxed); }

namespace cpu {
namespace {

template <OpCode op>
struct FunctorOf;
#define AG_FUNCTOR_OF(name, F) \
  template <>                  \
  struct FunctorOf<OpCode::name> { using type = fn::F; };
AG_UNARY_OPS(AG_FUNCTOR_OF)
AG_BINARY_OPS(AG_FUNCTOR_OF)
#undef AG_FUNCTOR_OF

// Ops whose functor is one IEEE operation (or a selection), so that contraction cannot differ.
consteval bool allowed(OpCode op) {
  switch (op) {
    case OpCode::add: case OpCode::sub: case OpCode::mul: case OpCode::div: case OpCode::sqrt:
    case OpCode::square: case OpCode::neg: case OpCode::relu: case OpCode::relu_grad: case OpCode::assign:
      return true;
    default:
      return false;
  }
}

consteval bool unary(OpCode op) {
  return op == OpCode::sqrt || op == OpCode::square || op == OpCode::neg || op == OpCode::relu;
}

struct GroupOp {
  OpCode op;
  int a = 0, b = 0;
};

template <size_t NIN, size_t NOPS>
struct Pattern {
  const char* name;
  char inputs[NIN + 1];  // 'x': as large as the output, 's': one value
  GroupOp ops[NOPS];
  static constexpr size_t nin = NIN, nops = NOPS;

  // What the loop relies on: operands refer to inputs or earlier ops; the last op is not an
  // assign (the interpreter writes the output only from another op); no op reads an input
  // after an assign has stored into it (the loop reads every input as it was).
  consteval bool well_formed() const {
    auto ok = [&](int k, size_t j) { return k >= 0 ? size_t(k) < NIN : size_t(-k - 1) < j; };
    for (size_t j = 0; j < NOPS; ++j) {
      if (!allowed(ops[j].op) || !ok(ops[j].a, j) || (!unary(ops[j].op) && !ok(ops[j].b, j))) return false;
      if (ops[j].op == OpCode::assign) {
        if (j + 1 == NOPS || ops[j].a < 0 || inputs[ops[j].a] != 'x') return false;
        for (size_t l = j + 1; l < NOPS; ++l)
          if (ops[l].a == ops[j].a || (!unary(ops[l].op) && ops[l].b == ops[j].a)) return false;
      }
    }
    return true;
  }
};

// ---- the known groups (the op lists models/optim.cpp's formulas compile to) ----------------
using enum OpCode;

// torch.optim.Adagrad: sum += g^2; p -= clr g / (sqrt(sum) + eps). Inputs g, sum, eps, clr, p.
constexpr Pattern<5, 8> adagrad{
    "adagrad", "xxssx",
    {{square, 0, 0}, {add, 1, -1}, {assign, 1, -2}, {sqrt, -3, 0}, {add, -4, 2}, {mul, 3, 0}, {div, -6, -5},
     {sub, 4, -7}}};

// torch.optim.Adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= step m / (sqrt(v) rbc2 + eps), rbc2 = 1 / sqrt(1 - b2^t). Inputs 1-b1, g, b1, m, 1-b2, b2,
// v, rbc2, eps, step, p.
constexpr Pattern<11, 15> adam{
    "adam", "sxsxssxsssx",
    {{mul, 0, 1}, {mul, 2, 3}, {add, -2, -1}, {assign, 3, -3}, {square, 1, 0}, {mul, 4, -5}, {mul, 5, 6},
     {add, -7, -6}, {assign, 6, -8}, {sqrt, -9, 0}, {mul, -10, 7}, {add, -11, 8}, {mul, 9, -4}, {div, -13, -12},
     {sub, 10, -14}}};

// torch.optim.AdamW: as Adam, from p (1 - lr wd). Inputs p, 1 - lr wd, 1-b1, g, b1, m, 1-b2, b2,
// v, rbc2, eps, step.
constexpr Pattern<12, 16> adamw{
    "adamw", "xssxsxssxsss",
    {{mul, 0, 1}, {mul, 2, 3}, {mul, 4, 5}, {add, -3, -2}, {assign, 5, -4}, {square, 3, 0}, {mul, 6, -6},
     {mul, 7, 8}, {add, -8, -7}, {assign, 8, -9}, {sqrt, -10, 0}, {mul, -11, 9}, {add, -12, 10}, {mul, 11, -5},
     {div, -14, -13}, {sub, -1, -15}}};

// torch.optim.SGD: p -= lr g; with momentum buf = mu buf + g, p -= lr buf, or with Nesterov
// p -= lr (g + mu buf). Inputs mu, buf, g, lr, p (plain: lr, g, p).
constexpr Pattern<3, 2> sgd{"sgd", "sxx", {{mul, 0, 1}, {sub, 2, -1}}};
constexpr Pattern<5, 5> sgd_momentum{
    "sgd-momentum", "sxxsx", {{mul, 0, 1}, {add, -1, 2}, {assign, 1, -2}, {mul, 3, -3}, {sub, 4, -4}}};
constexpr Pattern<5, 7> sgd_nesterov{
    "sgd-nesterov", "sxxsx",
    {{mul, 0, 1}, {add, -1, 2}, {assign, 1, -2}, {mul, 0, -3}, {add, 2, -4}, {mul, 3, -5}, {sub, 4, -6}}};

// ---- one loop per group ---------------------------------------------------------------------

template <class T, const auto& P>
struct Loop {
  static constexpr size_t nin = P.nin, nops = P.nops;
  static_assert(P.well_formed());

  static void run(const KernelCall& c) {
    g_compiled_group_runs.fetch_add(1, std::memory_order_relaxed);
    const int64_t n = c.out.numel();
#pragma omp parallel if (n > parallel_grain)
    {
      const int64_t parts = omp_get_num_threads(), p = omp_get_thread_num();
      chunk(c, n * p / parts, n * (p + 1) / parts);
    }
  }

  // Elements [lo, hi): every pointer and scalar in a local first, so that the loop's stores
  // cannot be taken to change them and the loop vectorises.
  static void chunk(const KernelCall& c, int64_t lo, int64_t hi) {
    const T* x[nin];
    T* target[nin];  // where an assign stores
    T s[nin];
    for (size_t k = 0; k < nin; ++k) {
      x[k] = c.in[k].ptr<T>();
      target[k] = static_cast<T*>(c.in[k].data);
      s[k] = P.inputs[k] == 's' ? x[k][0] : T(0);
    }
    T* out = c.out.ptr<T>();
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) element(x, target, s, out, i, std::make_index_sequence<nops>{});
  }

  // Element i: every value the group stores (its assigns' and its result) computed from the
  // inputs first, then stored.
  template <size_t... J>
  static void element(const T* const* x, T* const* target, const T* s, T* out, int64_t i, std::index_sequence<J...>) {
    T v[nops];
    ((v[J] = stored(J) ? value<-int(J) - 1>(x, s, i) : T(0)), ...);
    ((P.ops[J].op == OpCode::assign ? void(target[P.ops[J].a][i] = v[J]) : void()), ...);
    out[i] = v[nops - 1];
  }
  static constexpr bool stored(size_t j) { return P.ops[j].op == OpCode::assign || j == nops - 1; }

  // Operand k's value at element i: input k, or op -k - 1's result, written as the expression
  // that computes it (the compiler computes a result used twice once: the ops are pure).
  template <int k>
  static T value(const T* const* x, const T* s, int64_t i) {
    if constexpr (k >= 0) {
      if constexpr (P.inputs[k] == 's') return s[k];
      else return x[k][i];
    } else {
      constexpr GroupOp o = P.ops[-k - 1];
      if constexpr (o.op == OpCode::assign) {
        return value<o.b>(x, s, i);
      } else {
        using F = typename FunctorOf<o.op>::type;
        if constexpr (requires(F f, T t) { f(t); }) return F{}(value<o.a>(x, s, i));
        else return F{}(value<o.a>(x, s, i), value<o.b>(x, s, i));
      }
    }
  }
};

template <const auto& P>
bool matches(const KernelCall& c) {
  if (size_t(c.nin) != P.nin || size_t(c.nfused) != P.nops) return false;
  for (size_t k = 0; k < P.nin; ++k)
    if ((c.in[k].numel() == 1) != (P.inputs[k] == 's') || c.in[k].dtype != c.out.dtype) return false;
  for (size_t j = 0; j < P.nops; ++j) {
    const FusedOp& f = c.fused[j];
    const GroupOp& o = P.ops[j];
    if (f.node->op != o.op || f.a != o.a) return false;
    if (f.node->in.size() > 1 && f.b != o.b) return false;
  }
  return true;
}

template <const auto& P>
CompiledGroup entry(const KernelCall& c) {
  if (c.out.dtype == DType::f32) return {Loop<float, P>::run, P.name};
  return {Loop<double, P>::run, P.name};
}

}  // namespace

std::string group_signature(const KernelCall& c) {
  std::string s;
  for (int k = 0; k < c.nin; ++k) s += c.in[k].numel() == 1 ? 's' : 'x';
  s += ':';
  for (int j = 0; j < c.nfused; ++j)
    s += fmt::format(" {}({},{})", op_name(c.fused[j].node->op), c.fused[j].a, c.fused[j].b);
  return s;
}

CompiledGroup compiled_group(const KernelCall& c) {
  if (!g_compiled_groups.load(std::memory_order_relaxed)) return {};
  if (c.out.dtype != DType::f32 && c.out.dtype != DType::f64) return {};
  if (matches<adam>(c)) return entry<adam>(c);
  if (matches<adagrad>(c)) return entry<adagrad>(c);
  if (matches<adamw>(c)) return entry<adamw>(c);
  if (matches<sgd>(c)) return entry<sgd>(c);
  if (matches<sgd_momentum>(c)) return entry<sgd_momentum>(c);
  if (matches<sgd_nesterov>(c)) return entry<sgd_nesterov>(c);
  return {};
}

}  // namespace cpu
}  // namespace ag
