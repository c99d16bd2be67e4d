#pragma once
#include <napi.h>

namespace edgeopt::addon {

// The CNN kernels one call at a time, for tests and the TS twin comparison
// (the engine runs them through a Program instead): the addon's `cnn` object
// with conv, pool, globalPool, binary, activation, softmax, reduceMean, lrn,
// concat, split, pad, transpose; each takes an optional kernel table name
// last and returns new arrays. lib/backends/native/cnn.ts types them.
Napi::Object CnnExports(Napi::Env env);

}  // namespace edgeopt::addon
