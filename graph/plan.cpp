// Plan compilation: liveness, arena layout, in-place reuse, aliasing and assign elision.
#include "graph/plan.h"

#include <algorithm>
#include <climits>
#include <map>

#include <fmt/format.h>

#include "ops/op.h"

namespace ag {

namespace {

constexpr int64_t alignment = 256;  // bytes: enough for AVX-512 and for CUDA's coalescing
int64_t align_up(int64_t n) { return (n + alignment - 1) / alignment * alignment; }

// First-fit allocator over [0, end) with coalescing of freed blocks.
class ArenaLayout {
 public:
  int64_t take(int64_t bytes) {
    bytes = std::max<int64_t>(align_up(bytes), alignment);
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second < bytes) continue;
      int64_t off = it->first, size = it->second;
      free_.erase(it);
      if (size > bytes) free_[off + bytes] = size - bytes;
      return off;
    }
    // Grow: extend a free block that touches the end, if there is one.
    if (!free_.empty()) {
      auto last = std::prev(free_.end());
      if (last->first + last->second == end_) {
        int64_t off = last->first;
        free_.erase(last);
        end_ = off + bytes;
        return off;
      }
    }
    int64_t off = end_;
    end_ += bytes;
    return off;
  }
  void give(int64_t off, int64_t bytes) {
    bytes = std::max<int64_t>(align_up(bytes), alignment);
    auto it = free_.emplace(off, bytes).first;
    auto next = std::next(it);
    if (next != free_.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free_.erase(next);
    }
    if (it != free_.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free_.erase(it);
      }
    }
  }
  int64_t end() const { return end_; }

 private:
  std::map<int64_t, int64_t> free_;  // offset -> size
  int64_t end_ = 0;
};

bool overlaps(const Tensor& a, const Tensor& b) {
  auto a0 = static_cast<const char*>(a.data), b0 = static_cast<const char*>(b.data);
  return a0 < b0 + b.bytes() && b0 < a0 + a.bytes();
}

bool is_elementwise(OpKind k) { return k == OpKind::unary || k == OpKind::binary; }

}  // namespace

Plan compile(const std::vector<Value>& outputs, const CompileOptions& options) {
  if (outputs.empty()) throw Error("compile: no outputs");
  Plan p;
  Graph& g = *outputs[0].graph;
  p.graph = &g;
  const int n = g.size();
  p.storage.assign(size_t(n), Storage::none);
  p.buffer.assign(size_t(n), -1);
  p.alias_of.assign(size_t(n), -1);
  p.in_place.assign(size_t(n), 0);
  p.elided.assign(size_t(n), 0);

  // Live nodes: everything an output depends on.
  std::vector<char> live(size_t(n), 0);
  for (const Value& v : outputs) {
    if (v.graph != &g) throw Error("compile: outputs belong to different graphs");
    live[size_t(v.id)] = 1;
    p.outputs.push_back(v.id);
  }
  for (int id = n - 1; id >= 0; --id)
    if (live[size_t(id)])
      for (int src : g.node(id).in) live[size_t(src)] = 1;

  // Positions: ids are already a topological order. Leaves get position -1 (they never run).
  std::vector<int> pos(size_t(n), -1);
  for (int id = 0; id < n; ++id) {
    if (!live[size_t(id)]) continue;
    const Node& node = g.node(id);
    switch (node.op) {
      case OpCode::input: p.storage[size_t(id)] = Storage::input; p.inputs.push_back(id); break;
      case OpCode::constant: p.storage[size_t(id)] = Storage::constant; p.constants.push_back(id); break;
      case OpCode::external: p.storage[size_t(id)] = Storage::external; break;
      default: pos[size_t(id)] = int(p.steps.size()); p.steps.push_back(id);
    }
  }
  const int end = int(p.steps.size());

  // Last use of each node's value; outputs live to the end.
  std::vector<int> last_use(size_t(n), -1);
  for (int id : p.steps)
    for (int src : g.node(id).in) last_use[size_t(src)] = std::max(last_use[size_t(src)], pos[size_t(id)]);
  for (int id : p.outputs) last_use[size_t(id)] = INT_MAX;

  // Assigns: find each target's readers; check the old contents are read before the write, and
  // elide the copy when the value can be computed straight into the target.
  std::vector<int> externals;
  for (int id = 0; id < n; ++id)
    if (live[size_t(id)] && g.node(id).op == OpCode::external) externals.push_back(id);
  for (int id : p.steps) {
    const Node& an = g.node(id);
    if (an.op != OpCode::assign) continue;
    const Tensor& target = g.node(an.in[0]).external;
    int value = an.in[1];
    // The last step that reads the target's old contents, through any external view of it.
    int last_read = -1, value_reads_target = 0;
    for (int ext : externals) {
      if (!overlaps(g.node(ext).external, target)) continue;
      for (int sid : p.steps) {
        if (sid == id) continue;
        for (int src : g.node(sid).in)
          if (src == ext) {
            if (sid == value) value_reads_target = 1;
            else last_read = std::max(last_read, pos[size_t(sid)]);
          }
      }
    }
    if (last_read > pos[size_t(id)])
      throw Error(fmt::format("compile: '{}' is read (by node {}) after the assign (node {}) that overwrites it",
                              g.node(an.in[0]).name, p.steps[size_t(last_read)], id));
    const Node& vn = g.node(value);
    OpKind vk = op_info(vn.op).kind;
    bool computed = vk != OpKind::leaf && vk != OpKind::assign && vn.op != OpCode::reshape;
    bool sole_use = last_use[size_t(value)] == pos[size_t(id)];
    for (int sid : p.steps)
      if (sid != id)
        for (int src : g.node(sid).in) sole_use &= src != value;
    bool aligned = !value_reads_target || (is_elementwise(vk) && [&] {
      for (int src : vn.in)  // every read of the target must be index-aligned with the write
        if (g.node(src).op == OpCode::external && overlaps(g.node(src).external, target) &&
            (g.node(src).shape != vn.shape || g.node(src).external.data != target.data))
          return false;
      return true;
    }());
    if (options.elide_assign && computed && sole_use && aligned && last_read < pos[size_t(value)] &&
        p.storage[size_t(value)] == Storage::none) {
      p.storage[size_t(value)] = Storage::external;  // the value's node writes into the target
      p.elided[size_t(id)] = 1;
    }
  }

  // Arena layout, in step order.
  ArenaLayout arena;
  std::vector<int> buffer_last;  // per buffer: max last use of the nodes living in it
  std::vector<char> freed;
  auto free_if_dead = [&](int b, int at) {
    if (b < 0 || freed[size_t(b)] || buffer_last[size_t(b)] != at) return;
    freed[size_t(b)] = 1;
    arena.give(p.buffers[size_t(b)].offset, p.buffers[size_t(b)].bytes);
  };
  for (int id : p.steps) {
    const Node& node = g.node(id);
    const int at = pos[size_t(id)];
    const OpKind kind = op_info(node.op).kind;
    const int64_t bytes = node.shape.numel() * int64_t(dtype_size(node.dtype));
    int reused = -1;
    if (node.op == OpCode::reshape || node.op == OpCode::assign) {
      // Shares its source's memory: reshape its input's, assign its target's.
      int src = node.in[0];
      p.alias_of[size_t(id)] = src;
      p.storage[size_t(id)] = p.storage[size_t(p.home(src))];
      int b = p.buffer[size_t(p.home(src))];
      p.buffer[size_t(id)] = b;
      if (b >= 0) buffer_last[size_t(b)] = std::max(buffer_last[size_t(b)], last_use[size_t(id)]);
    } else if (p.storage[size_t(id)] == Storage::external) {
      // An elided assign's value: its memory is the target's.
      for (int aid : p.steps)
        if (g.node(aid).op == OpCode::assign && g.node(aid).in[1] == id) p.alias_of[size_t(id)] = g.node(aid).in[0];
    } else {
      if (options.in_place && is_elementwise(kind)) {
        for (int src : node.in) {
          int b = p.buffer[size_t(src)];
          if (b < 0 || p.storage[size_t(src)] != Storage::arena) continue;
          if (buffer_last[size_t(b)] != at || g.node(src).shape != node.shape || p.buffers[size_t(b)].bytes != bytes) continue;
          reused = b;
          break;
        }
      }
      p.storage[size_t(id)] = Storage::arena;
      if (reused >= 0) {
        p.buffer[size_t(id)] = reused;
        p.in_place[size_t(id)] = 1;
        buffer_last[size_t(reused)] = last_use[size_t(id)];
      } else {
        PlanBuffer buf;
        buf.bytes = bytes;
        buf.offset = arena.take(bytes);
        buf.first = at;
        p.buffers.push_back(buf);
        buffer_last.push_back(last_use[size_t(id)]);
        freed.push_back(0);
        p.buffer[size_t(id)] = int(p.buffers.size()) - 1;
      }
    }
    // Free the inputs' buffers that die here (an in-place target lives on as this node's).
    for (int src : node.in)
      if (p.buffer[size_t(src)] != reused) free_if_dead(p.buffer[size_t(src)], at);
  }
  for (size_t b = 0; b < p.buffers.size(); ++b)
    p.buffers[b].last = buffer_last[b] == INT_MAX ? end : std::max(buffer_last[b], p.buffers[b].first);
  p.arena_bytes = arena.end();
  return p;
}

std::string Plan::describe() const {
  std::string s;
  static const char* where[] = {"-", "arena", "input", "constant", "external"};
  for (size_t k = 0; k < steps.size(); ++k) {
    int id = steps[k];
    const Node& node = graph->node(id);
    s += fmt::format("{:4} n{:<5} {:<14} {:<16} {}", k, id, op_name(node.op), node.shape.str(), where[int(storage[size_t(id)])]);
    if (buffer[size_t(id)] >= 0) s += fmt::format(" @{}", buffers[size_t(buffer[size_t(id)])].offset);
    if (in_place[size_t(id)]) s += " in-place";
    if (alias_of[size_t(id)] >= 0) s += fmt::format(" alias of n{}", alias_of[size_t(id)]);
    if (elided[size_t(id)]) s += " elided";
    s += "\n";
  }
  return s;
}

}  // namespace ag
