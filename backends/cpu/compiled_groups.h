// Fused groups compiled ahead of time. The CPU backend runs a fused group through an
// interpreter (cpu_backend.cpp, fused_kernel): every op over a block of 512 elements, its block
// kept in a scratch buffer, then the next op. That keeps any group correct, but every op loads
// and stores its block, and the group's inputs arrive a stream at a time. The optimisers'
// updates are the largest such groups (a 784 x 1000 weight takes 0.5 ms a step), so their
// shapes are written down here (the op list models/optim.cpp produces) and compiled as one
// loop that keeps every intermediate in registers: the same IEEE operations in the same order,
// so the same bits, two to three times faster.
#pragma once
#include <string>

#include "backends/backend.h"

namespace ag::cpu {

using GroupKernel = void (*)(const KernelCall& call);

// The compiled kernel for this fused group, and its name; {nullptr, nullptr} when it is not one
// of the known groups (or compiled groups are switched off): the interpreter runs it.
struct CompiledGroup {
  GroupKernel run = nullptr;
  const char* name = nullptr;
};
CompiledGroup compiled_group(const KernelCall& call);

// The group as a pattern in compiled_groups.cpp writes it: inputs ('x' full, 's' one value) and
// ops with their operands, e.g. "xxssx: square(0,0) add(1,-1) ...". AEGRAPH_PROFILE=2 prints
// it for every group the interpreter runs, as the start of a new pattern.
std::string group_signature(const KernelCall& call);

}  // namespace ag::cpu
