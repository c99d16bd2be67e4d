// The reference NPU's compiled graph, its kernels and its blob format.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../../core/static_quant.h"

namespace edgeopt::npu_ref {

struct Layer {
  bool relu_only = false;  // a standalone Relu node
  int k = 0, n = 0;
  std::vector<int8_t> weight;       // [n][k]
  std::vector<float> weight_scale;  // n (per-tensor scales are expanded)
  std::vector<float> bias;          // n or empty
  bool relu = false;
  StaticActivation input{1.0f, 0};
};

struct Graph {
  std::vector<Layer> layers;
  uint32_t batch = 1;
  long executions = 0;       // execute() calls so far
  long fail_execute_at = 0;  // fault injection: fail this call (0 = never)
  bool wrong_size = false;   // fault injection: report a short output
};

// Widths chain (each layer's k is the previous width) and the graph is not empty.
bool chain_ok(const Graph& g);

// y [m x last n] = graph(x [m x first k]).
void run(const Graph& g, const float* x, int m, float* y);

// The blob: "EONPUREF" magic, u32 version 1, u32 batch, u32 layer count, then per
// layer u32 flags (1 relu_only, 2 relu, 4 bias), i32 k, i32 n, f32 input scale,
// i32 input zero point, then n*k int8 weights, n f32 scales, n f32 bias if flagged.
// Little-endian. parse_blob checks every size before it reads.
std::vector<uint8_t> write_blob(const Graph& g);
bool parse_blob(const uint8_t* p, size_t size, Graph* g, std::string* err);

}  // namespace edgeopt::npu_ref
