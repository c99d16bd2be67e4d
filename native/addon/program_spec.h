// Parses a Program JS object (lib/engine/program.ts) ONCE into the core's
// ProgramSpec: every field type-checked, every index, size and offset then
// checked by validate_program. Pointers into constant typed arrays stay valid
// only during the call that parsed them (the executor packs or copies them).
#pragma once
#include <napi.h>

#include "../core/program.h"

namespace edgeopt::addon {

ProgramSpec parse_program(const Napi::Value& v, SparsePolicy sparse = SparsePolicy::Auto);

// 'auto' (default), 'always' or 'never' (core/sparse.h).
SparsePolicy sparse_policy_arg(const Napi::Value& v);

}  // namespace edgeopt::addon
