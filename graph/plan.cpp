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

namespace {

// A broadcast a group can hold: a column [M, 1] or a row [N] / [1, N] spread over [M, N].
bool fusible_broadcast(const Graph& g, int id) {
  const Node& node = g.node(id);
  if (node.op != OpCode::broadcast_to || node.shape.rank != 2) return false;
  const Shape& in = g.node(node.in[0]).shape;
  const int64_t M = node.shape[0], N = node.shape[1];
  const bool column = in.rank == 2 && in[0] == M && in[1] == 1;
  const bool row = in.numel() == N && in[in.rank - 1] == N;
  return (column || row) && M > 1 && N > 1;
}

// An elementwise node a group can hold: each operand is as large as the output, or a scalar.
// (And a 2-D row or column broadcast, whose operand is its row or column.)
bool fusible(const Graph& g, int id) {
  const Node& node = g.node(id);
  if (fusible_broadcast(g, id)) return true;
  if (!is_elementwise(op_info(node.op).kind)) return false;
  const int64_t n = node.shape.numel();
  for (int src : node.in) {
    int64_t m = g.node(src).shape.numel();
    if (m != n && m != 1) return false;
  }
  return n > 1;
}

// An assign a group can hold: its target is an external tensor of its size, and its value a
// node the group absorbs with it. In the group's loop it stores each block of the value into the
// target and hands it on, so an optimiser's new state and its parameter update are one pass.
bool fusible_assign(const Graph& g, int id) {
  const Node& node = g.node(id);
  if (node.op != OpCode::assign) return false;
  const Node& target = g.node(node.in[0]);
  return target.op == OpCode::external && target.shape.numel() == node.shape.numel() && node.shape.numel() > 1;
}

// Fusion groups, found from the last node back: a fusible node roots a group unless a group has
// absorbed it already; it absorbs each fusible operand of the same size and dtype whose only
// reader is inside the group and which no one asked to see. It also absorbs an assign (with its
// value) when the assign's other readers all come after the group: the stored target is then
// what they read.
void find_groups(const Graph& g, const std::vector<char>& live, const std::vector<char>& is_output,
                 const std::vector<std::vector<int>>& readers, const std::vector<char>& keep_out,
                 std::vector<int>& group) {
  for (int root = g.size() - 1; root >= 0; --root) {
    if (!live[size_t(root)] || group[size_t(root)] >= 0 || !fusible(g, root)) continue;
    const Node& rn = g.node(root);
    std::vector<int> members = {root}, todo = {root};
    group[size_t(root)] = root;
    auto absorbable = [&](int src) {
      const Node& sn = g.node(src);
      return group[size_t(src)] < 0 && !is_output[size_t(src)] && readers[size_t(src)].size() == 1 && fusible(g, src) &&
             sn.shape.numel() == rn.shape.numel() && sn.dtype == rn.dtype;
    };
    auto read_after = [&](int src) {  // every reader of src is in this group or runs after it
      for (int r : readers[size_t(src)])
        if (group[size_t(r)] != root && r < root) return false;
      return true;
    };
    while (!todo.empty()) {
      int id = todo.back();
      todo.pop_back();
      for (int src : g.node(id).in) {
        const int room = max_fused_ops - int(members.size());
        if (room >= 1 && absorbable(src)) {
          group[size_t(src)] = root;
          members.push_back(src);
          todo.push_back(src);
        } else if (room >= 2 && group[size_t(src)] < 0 && !keep_out[size_t(src)] && fusible_assign(g, src) && g.node(src).dtype == rn.dtype &&
                   g.node(src).shape.numel() == rn.shape.numel() && read_after(src) && absorbable(g.node(src).in[1])) {
          const int value = g.node(src).in[1];
          group[size_t(src)] = group[size_t(value)] = root;
          members.push_back(src);
          members.push_back(value);
          todo.push_back(value);
        }
      }
    }
    if (members.size() == 1) group[size_t(root)] = -1;  // nothing to fuse with: a plain kernel
  }
}

}  // namespace

namespace {

// The step that produces node id's value (a fused member's is its group), or -1 for a leaf.
int producer(const Plan& p, int id) {
  if (p.group[size_t(id)] >= 0) return p.group[size_t(id)];
  const Storage s = p.storage[size_t(id)];
  return s == Storage::input || s == Storage::constant || (s == Storage::external && p.alias_of[size_t(id)] < 0) ? -1 : id;
}

// Updates run as early as they may: grad() and the optimiser create every update after the
// whole backward pass, but the update of a layer's weight needs only that layer's gradient, and
// run right after it the gradient (and the weight the backward pass just read) are still in
// cache. A step that writes external memory (an assign, an assign's value, a group storing a
// state) moves up to just after the last step producing what it reads and the last other step
// reading the memory it overwrites. Nothing else moves, so every value is still computed before
// it is read.
void schedule_updates(const Graph& g, Plan& p, std::vector<int>& pos) {
  const int n = g.size();
  std::vector<std::vector<int>> assigned_to(static_cast<size_t>(n));  // value -> targets of live assigns storing it
  for (int r = 0; r < n; ++r)
    if (g.node(r).op == OpCode::assign && (pos[size_t(r)] >= 0 || p.group[size_t(r)] >= 0))
      assigned_to[size_t(g.node(r).in[1])].push_back(g.node(r).in[0]);
  std::vector<int> targets_of;  // scratch: externals a step overwrites
  auto writes = [&](int id) {
    targets_of = assigned_to[size_t(id)];
    const Node& node = g.node(id);
    if (node.op == OpCode::assign) targets_of.push_back(node.in[0]);
    if (p.fused_root(id))
      for (int m : p.members(id))
        if (g.node(m).op == OpCode::assign) targets_of.push_back(g.node(m).in[0]);
    return !targets_of.empty();
  };
  auto move_to = [&](int id, int earliest) {
    const int at = pos[size_t(id)];
    if (earliest >= at) return;
    p.steps.erase(p.steps.begin() + at);
    p.steps.insert(p.steps.begin() + earliest, id);
    for (size_t k = 0; k < p.steps.size(); ++k) pos[size_t(p.steps[k])] = int(k);
  };
  auto after_operands = [&](int id) {
    int earliest = 0;
    for (int src : p.operands[size_t(id)]) {
      const int prod = producer(p, src);
      if (prod >= 0 && prod != id) earliest = std::max(earliest, pos[size_t(prod)] + 1);
    }
    return earliest;
  };
  // In the original (topological) order, so what a step reads has taken its place already. The
  // scalars that write nothing move up too (learning rates and the like: the optimiser makes
  // them after the backward pass, and every update reads them).
  // Collectives (a data-parallel step's gradient buckets) move up too, so a bucket is summed
  // over the ranks as soon as its gradients exist, with what unpacks it (slices, reshapes) and
  // so the updates reading those; they keep their order among themselves, which every rank's
  // plan must share.
  const std::vector<int> original = p.steps;
  std::vector<char> from_collective(static_cast<size_t>(n), 0);
  int last_collective = -1;
  for (int id : original) {
    const Node& node = g.node(id);
    if (op_info(node.op).kind == OpKind::collective) {
      int earliest = after_operands(id);
      if (last_collective >= 0) earliest = std::max(earliest, pos[size_t(last_collective)] + 1);
      move_to(id, earliest);
      from_collective[size_t(id)] = 1;
      last_collective = id;
      continue;
    }
    if ((node.op == OpCode::slice || is_alias(node.op)) && from_collective[size_t(node.in[0])]) {
      move_to(id, after_operands(id));
      from_collective[size_t(id)] = 1;
      continue;
    }
    if (!writes(id)) {
      if (node.shape.numel() == 1) move_to(id, after_operands(id));
      continue;
    }
    int earliest = after_operands(id);  // position it may take: after these
    for (int other : p.steps) {
      if (other == id) continue;
      const Node& on = g.node(other);
      for (int src : p.operands[size_t(other)]) {
        const Node& sn = g.node(src);
        if (sn.op != OpCode::external) continue;
        for (int t : targets_of) {
          if (!overlaps(sn.external, g.node(t).external)) continue;
          if (on.op == OpCode::assign && on.in[0] == t) continue;  // the write itself
          earliest = std::max(earliest, pos[size_t(other)] + 1);
        }
      }
    }
    move_to(id, earliest);
  }
}

}  // namespace

std::vector<int> Plan::members(int root) const {
  std::vector<int> m;
  for (int id = 0; id <= root; ++id)
    if (group[size_t(id)] == root) m.push_back(id);
  return m;
}

Plan compile(const std::vector<Value>& outputs, const CompileOptions& options) {
  if (outputs.empty()) throw Error("compile: no outputs");
  Plan p;
  Graph& g = *outputs[0].graph;
  p.graph = &g;
  p.options = options;
  p.output_values = outputs;
  const int n = g.size();
  p.storage.assign(size_t(n), Storage::none);
  p.buffer.assign(size_t(n), -1);
  p.alias_of.assign(size_t(n), -1);
  p.in_place.assign(size_t(n), 0);
  p.elided.assign(size_t(n), 0);
  p.group.assign(size_t(n), -1);
  p.operands.assign(size_t(n), {});

  // Live nodes: everything an output depends on.
  std::vector<char> live(size_t(n), 0), is_output(size_t(n), 0);
  for (const Value& v : outputs) {
    if (v.graph != &g) throw Error("compile: outputs belong to different graphs");
    live[size_t(v.id)] = 1;
    is_output[size_t(v.id)] = 1;
    p.outputs.push_back(v.id);
  }
  for (int id = n - 1; id >= 0; --id)
    if (live[size_t(id)])
      for (int src : g.node(id).in) live[size_t(src)] = 1;
  std::vector<std::vector<int>> readers(static_cast<size_t>(n));  // distinct live nodes reading each node
  for (int id = 0; id < n; ++id) {
    if (!live[size_t(id)]) continue;
    const std::vector<int>& in = g.node(id).in;
    for (size_t k = 0; k < in.size(); ++k)
      if (std::find(in.begin(), in.begin() + long(k), in[k]) == in.begin() + long(k)) readers[size_t(in[k])].push_back(id);
  }
  if (options.fuse) {
    // A fused assign stores its target block by block, so its group may read the target only
    // where it writes it: an assign whose group reads another view of the target stays out.
    std::vector<char> keep_out(size_t(n), 0);
    for (bool again = true; again;) {
      again = false;
      std::fill(p.group.begin(), p.group.end(), -1);
      find_groups(g, live, is_output, readers, keep_out, p.group);
      for (int id = 0; id < n; ++id) {
        const int root = p.group[size_t(id)];
        if (root < 0 || root == id || g.node(id).op != OpCode::assign) continue;
        const Node& an = g.node(id);
        const Tensor& target = g.node(an.in[0]).external;
        for (int m : p.members(root))
          for (int src : g.node(m).in) {
            const Node& sn = g.node(src);
            if (sn.op == OpCode::external && overlaps(sn.external, target) &&
                (sn.external.data != target.data || sn.shape.numel() != an.shape.numel()))
              keep_out[size_t(id)] = 1, again = true;
          }
      }
    }
  }

  // Steps in id order (a topological order); leaves and group members are not steps. A group
  // runs at its root's position and reads its operands from outside the group there.
  std::vector<int> pos(size_t(n), -1);
  for (int id = 0; id < n; ++id) {
    if (!live[size_t(id)]) continue;
    const Node& node = g.node(id);
    int root = p.group[size_t(id)];
    if (node.op == OpCode::input) { p.storage[size_t(id)] = Storage::input; p.inputs.push_back(id); }
    else if (node.op == OpCode::constant) { p.storage[size_t(id)] = Storage::constant; p.constants.push_back(id); }
    else if (node.op == OpCode::external) p.storage[size_t(id)] = Storage::external;
    else if (root >= 0 && root != id && node.op == OpCode::assign) {  // stored into its target by the group
      p.storage[size_t(id)] = Storage::external;
      p.alias_of[size_t(id)] = node.in[0];
    } else if (root >= 0 && root != id) p.storage[size_t(id)] = Storage::fused;
    else { pos[size_t(id)] = int(p.steps.size()); p.steps.push_back(id); }
  }
  for (int id : p.steps) {
    std::vector<int>& ops = p.operands[size_t(id)];
    const std::vector<int> members = p.fused_root(id) ? p.members(id) : std::vector<int>{id};
    for (int m : members)
      for (int src : g.node(m).in)
        if (p.group[size_t(src)] != id && std::find(ops.begin(), ops.end(), src) == ops.end()) ops.push_back(src);
  }
  if (options.schedule_updates) schedule_updates(g, p, pos);
  const int end = int(p.steps.size());

  // Last use of each value; outputs live to the end.
  std::vector<int> last_use(size_t(n), -1);
  for (int id : p.steps)
    for (int src : p.operands[size_t(id)]) last_use[size_t(src)] = std::max(last_use[size_t(src)], pos[size_t(id)]);
  for (int id : p.outputs) last_use[size_t(id)] = INT_MAX;

  // Assigns: check the target's old contents are read before it is written, and elide the copy
  // when the value can be computed straight into the target.
  std::vector<int> externals;
  for (int id = 0; id < n; ++id)
    if (live[size_t(id)] && g.node(id).op == OpCode::external) externals.push_back(id);
  // Whether step `sid` reads the contents of `ext`. A later assign to the same buffer names it
  // as its target without reading it (batch norm's running mean, updated twice in one step).
  auto reads = [&](int sid, int ext) {
    const std::vector<int>& ops = p.operands[size_t(sid)];
    if (std::find(ops.begin(), ops.end(), ext) == ops.end()) return false;
    const std::vector<int> members = p.fused_root(sid) ? p.members(sid) : std::vector<int>{sid};
    for (int m : members) {
      const Node& mn = g.node(m);
      for (size_t k = 0; k < mn.in.size(); ++k)
        if (mn.in[k] == ext && !(mn.op == OpCode::assign && k == 0)) return true;
    }
    return false;
  };
  for (int id = 0; id < n; ++id) {
    const Node& an = g.node(id);
    if (!live[size_t(id)] || an.op != OpCode::assign) continue;
    const Tensor& target = g.node(an.in[0]).external;
    const int value = an.in[1];
    const int step = p.group[size_t(id)] >= 0 ? p.group[size_t(id)] : id;  // a fused assign runs with its group
    const bool value_is_step = pos[size_t(value)] >= 0;
    // The last other step that reads the target's old contents, through any external view of it.
    int last_read = -1;
    bool value_reads_target = false;
    for (int ext : externals) {
      if (!overlaps(g.node(ext).external, target)) continue;
      for (int sid : p.steps) {
        if (sid == step || !reads(sid, ext)) continue;
        if (sid == value) value_reads_target = true;
        else last_read = std::max(last_read, pos[size_t(sid)]);
      }
    }
    if (last_read > pos[size_t(step)])
      throw Error(fmt::format("compile: '{}' is read (by node {}) after the assign (node {}) that overwrites it",
                              g.node(an.in[0]).name, p.steps[size_t(last_read)], id));
    if (step != id) continue;  // stored by its group (checked when the groups were formed)
    if (!options.elide_assign || !value_is_step || is_output[size_t(value)] || p.storage[size_t(value)] != Storage::none)
      continue;
    const Node& vn = g.node(value);
    const OpKind vk = op_info(vn.op).kind;
    if (vk == OpKind::leaf || vk == OpKind::assign || is_alias(vn.op) || last_read >= pos[size_t(value)]) continue;
    // The value's step may read the target only index for index, as an elementwise loop does.
    bool aligned = true;
    if (value_reads_target) {
      const std::vector<int> members = p.fused_root(value) ? p.members(value) : std::vector<int>{value};
      for (int m : members)
        for (int src : g.node(m).in)
          if (g.node(src).op == OpCode::external && overlaps(g.node(src).external, target))
            aligned &= is_elementwise(op_info(g.node(m).op).kind) && g.node(src).shape.numel() == vn.shape.numel() &&
                       g.node(src).external.data == target.data;
    }
    if (!aligned) continue;
    // Other readers of the value read it from the target, which nothing overwrites before them.
    p.storage[size_t(value)] = Storage::external;
    p.alias_of[size_t(value)] = an.in[0];
    p.elided[size_t(id)] = 1;
  }

  // Pairs of adjacent independent matrix products, each writing its own arena block. A backend
  // may run the two at once, so what the first reads must outlive the second.
  p.runs_with_next.assign(size_t(end), 0);
  if (options.pair_matmuls)
    for (int k = 0; k + 1 < end; ++k) {
      const int a = p.steps[size_t(k)], b = p.steps[size_t(k + 1)];
      if (g.node(a).op != OpCode::matmul || g.node(b).op != OpCode::matmul) continue;
      if (p.storage[size_t(a)] != Storage::none || p.storage[size_t(b)] != Storage::none) continue;  // not arena
      if (k > 0 && p.runs_with_next[size_t(k - 1)]) continue;
      const std::vector<int>& ops = p.operands[size_t(b)];
      if (std::find(ops.begin(), ops.end(), a) != ops.end()) continue;
      p.runs_with_next[size_t(k)] = 1;
      for (int src : p.operands[size_t(a)])
        if (last_use[size_t(src)] == k) last_use[size_t(src)] = k + 1;
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
    const int64_t bytes = node.shape.numel() * int64_t(dtype_size(node.dtype));
    int reused = -1;
    if (is_alias(node.op) || node.op == OpCode::assign) {
      // Shares its source's memory: reshape (stop_gradient) its input's, assign its target's.
      const int src = node.in[0];
      p.alias_of[size_t(id)] = src;
      p.storage[size_t(id)] = p.storage[size_t(p.home(src))];
      const int b = p.buffer[size_t(p.home(src))];
      p.buffer[size_t(id)] = b;
      if (b >= 0) buffer_last[size_t(b)] = std::max(buffer_last[size_t(b)], last_use[size_t(id)]);
    } else if (p.storage[size_t(id)] != Storage::external) {  // external: an elided assign's value
      if (options.in_place && is_elementwise(op_info(node.op).kind)) {
        // Every element is read before it is written (also in a group: the root writes a block
        // last), so a full-size operand that dies here can hold the result.
        for (int src : p.operands[size_t(id)]) {
          const int b = p.buffer[size_t(src)];
          if (b < 0 || p.storage[size_t(src)] != Storage::arena) continue;
          if (buffer_last[size_t(b)] != at || g.node(src).shape.numel() != node.shape.numel() ||
              p.buffers[size_t(b)].bytes != bytes)
            continue;
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
    // Free the operands' buffers that die here (an in-place one lives on as this node's); the
    // first of a pair frees what it read only now.
    for (int src : p.operands[size_t(id)])
      if (p.buffer[size_t(src)] != reused) free_if_dead(p.buffer[size_t(src)], at);
    if (at > 0 && p.runs_with_next[size_t(at - 1)])
      for (int src : p.operands[size_t(p.steps[size_t(at - 1)])]) free_if_dead(p.buffer[size_t(src)], at);
  }
  for (size_t b = 0; b < p.buffers.size(); ++b)
    p.buffers[b].last = buffer_last[b] == INT_MAX ? end : std::max(buffer_last[b], p.buffers[b].first);
  p.arena_bytes = arena.end();
  return p;
}

std::string Plan::describe() const {
  std::string s;
  static const char* where[] = {"-", "arena", "input", "constant", "external", "fused"};
  for (size_t k = 0; k < steps.size(); ++k) {
    int id = steps[k];
    const Node& node = graph->node(id);
    s += fmt::format("{:4} n{:<5} {:<14} {:<16} {}", k, id, op_name(node.op), node.shape.str(), where[int(storage[size_t(id)])]);
    if (buffer[size_t(id)] >= 0) s += fmt::format(" @{}", buffers[size_t(buffer[size_t(id)])].offset);
    if (in_place[size_t(id)]) s += " in-place";
    if (alias_of[size_t(id)] >= 0) s += fmt::format(" alias of n{}", alias_of[size_t(id)]);
    if (elided[size_t(id)]) s += " elided";
    if (runs_with_next[k]) s += " with next";
    if (fused_root(id)) {
      s += " fuses";
      for (int m : members(id)) s += fmt::format(" {}", op_name(graph->node(m).op));
    }
    s += "\n";
  }
  return s;
}

}  // namespace ag
