/*
 * edgeopt NPU plugin ABI, version 1 (plain C, one header).
 *
 * A plugin is a shared library that exports one function, EDGEOPT_NPU_ENTRY_POINT,
 * returning a table of functions. The host (edgeopt) asks which nodes the device
 * supports, partitions the graph itself (maximal runs of supported nodes), compiles
 * each run with compile() (or loads a vendor's precompiled blob with load_blob()),
 * and runs it with execute(). Whatever the plugin rejects or fails on runs on the
 * host's CPU kernels: a plugin never has to be complete.
 *
 * Compatibility rules (as ONNX Runtime's OrtEpApi and TFLite's external delegate):
 * - abi_version changes only for incompatible changes; the host refuses a table
 *   whose abi_version differs from its own.
 * - Structs start with struct_size and only grow at the end. The host refuses a
 *   function table smaller than the version-1 table; every struct the host passes
 *   in carries its own size, so a newer plugin can tell which fields exist.
 * - Memory passed in by the host is valid only during the call: copy what you keep.
 * - Strings returned by the plugin (name, last_error) are owned by the plugin.
 *
 * Numerics of a statically quantized QDense node (the form the host gives to NPUs;
 * TFLite's int8 activation scheme, weights symmetric per output channel):
 *   q[k]   = clamp(round_half_even(x[k] / input_scale) + input_zero_point, -128, 127)  (float32 math)
 *   acc[n] = sum_k (q[k] - input_zero_point) * w[n][k]                                 (exact int32)
 *   y[n]   = float(acc[n]) * (input_scale * weight_scale[n]) + bias[n], then max(y, 0) if fused_relu
 * computed in float32 in exactly that order, without FMA contraction. The host's CPU
 * kernels use the same formula, so a conforming plugin gives bit-identical results.
 * A plugin that requantizes in fixed point on the device (int32 multiplier + shift)
 * still conforms in acc; its float outputs then differ by at most one output step.
 */
#ifndef EDGEOPT_NPU_H_
#define EDGEOPT_NPU_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EDGEOPT_NPU_ABI_VERSION 1u
/* The one symbol a plugin exports: const edgeopt_npu_plugin* edgeopt_npu_plugin_v1(uint32_t host_abi_version). */
#define EDGEOPT_NPU_ENTRY_POINT "edgeopt_npu_plugin_v1"

#if defined(_WIN32)
#define EDGEOPT_NPU_EXPORT __declspec(dllexport)
#else
#define EDGEOPT_NPU_EXPORT __attribute__((visibility("default")))
#endif

/* Return codes. */
enum {
  EDGEOPT_NPU_OK = 0,
  EDGEOPT_NPU_UNSUPPORTED = 1,      /* the device cannot run this */
  EDGEOPT_NPU_INVALID_ARGUMENT = 2, /* malformed input (bad blob, wrong sizes) */
  EDGEOPT_NPU_DEVICE_ERROR = 3,     /* the device or driver failed */
  EDGEOPT_NPU_OUT_OF_MEMORY = 4
};

/* Element types, as bit flags (capabilities.dtypes is a set). */
enum {
  EDGEOPT_NPU_FLOAT32 = 1u << 0,
  EDGEOPT_NPU_INT8 = 1u << 1,
  EDGEOPT_NPU_UINT8 = 1u << 2,
  EDGEOPT_NPU_INT16 = 1u << 3,
  EDGEOPT_NPU_FLOAT16 = 1u << 4
};

/* Weight quantization granularity, as bit flags. */
enum { EDGEOPT_NPU_PER_TENSOR = 1u << 0, EDGEOPT_NPU_PER_CHANNEL = 1u << 1 };

/* Activation quantization of a node's input, as values (node) and bit flags (1u << value, capabilities). */
enum {
  EDGEOPT_NPU_ACT_FLOAT = 0,   /* float layer (Dense) */
  EDGEOPT_NPU_ACT_DYNAMIC = 1, /* per-row scale computed at run time (host CPU scheme) */
  EDGEOPT_NPU_ACT_STATIC = 2   /* per-tensor scale and zero point from calibration */
};

/* Operators. Host ops not listed here never reach a plugin. */
enum {
  EDGEOPT_NPU_OP_DENSE = 1,  /* float32 y = x W^T + b */
  EDGEOPT_NPU_OP_QDENSE = 2, /* int8 weights, see the numerics above */
  EDGEOPT_NPU_OP_RELU = 3,
  EDGEOPT_NPU_OP_SOFTMAX = 4 /* last axis */
};

typedef struct edgeopt_npu_capabilities {
  uint32_t struct_size;        /* set by the host */
  uint32_t dtypes;             /* EDGEOPT_NPU_INT8 | ... : what the device computes in */
  uint32_t weight_granularity; /* EDGEOPT_NPU_PER_TENSOR | EDGEOPT_NPU_PER_CHANNEL */
  uint32_t activation_quant;   /* 1u << EDGEOPT_NPU_ACT_STATIC | ... */
  uint32_t max_dims;           /* largest tensor rank, batch included (RKNN 16, EdgeTPU 3) */
  uint32_t max_channels;       /* widest layer input or output; 0 = no limit */
  uint32_t static_shapes_only; /* 1: graphs are compiled for a fixed batch; the host pads the last chunk */
  uint32_t partial_graphs;     /* 1: any run of nodes; 0: only a prefix of the graph (EdgeTPU) */
  uint32_t thread_safe;        /* 1: execute() may run concurrently on one graph; 0: the host serializes */
} edgeopt_npu_capabilities;

/* One node. Tensors are [batch, features]; weights are [out_features][in_features] row-major. */
typedef struct edgeopt_npu_node {
  uint32_t struct_size;
  uint32_t op;               /* EDGEOPT_NPU_OP_* */
  const char* name;          /* the graph node's name, for messages */
  int32_t in_features;       /* K (for Relu/Softmax: the width) */
  int32_t out_features;      /* N (for Relu/Softmax: the width) */
  uint32_t weight_dtype;     /* EDGEOPT_NPU_FLOAT32 (Dense) or EDGEOPT_NPU_INT8 (QDense); 0 without weights */
  const void* weight;        /* N*K elements, or NULL */
  const float* weight_scale; /* QDense: N (per channel) or 1 (per tensor) */
  uint32_t weight_scale_count;
  const float* bias; /* N floats, or NULL */
  uint32_t fused_relu;
  uint32_t activation_quant; /* EDGEOPT_NPU_ACT_* */
  float input_scale;         /* EDGEOPT_NPU_ACT_STATIC only */
  int32_t input_zero_point;  /* EDGEOPT_NPU_ACT_STATIC only, in [-128, 127] */
} edgeopt_npu_node;

/* A chain of nodes: each node's output is the next node's input. */
typedef struct edgeopt_npu_subgraph {
  uint32_t struct_size;
  const edgeopt_npu_node* nodes;
  uint32_t node_count;
  uint32_t batch; /* rows per execute() when static_shapes_only, else a hint */
} edgeopt_npu_subgraph;

/* A buffer for execute(): float32 [rows, features] at the graph boundary. */
typedef struct edgeopt_npu_tensor {
  uint32_t struct_size;
  uint32_t dtype; /* EDGEOPT_NPU_FLOAT32 in ABI 1 */
  uint32_t rows;
  uint32_t features;
  void* data;
  size_t size_bytes; /* input: bytes of data. output: capacity in; the plugin sets the bytes it wrote */
} edgeopt_npu_tensor;

typedef struct edgeopt_npu_option {
  const char* key;
  const char* value;
} edgeopt_npu_option;

typedef struct edgeopt_npu_graph edgeopt_npu_graph; /* a compiled subgraph, opaque to the host */

typedef struct edgeopt_npu_plugin {
  uint32_t abi_version; /* EDGEOPT_NPU_ABI_VERSION the plugin was built against */
  uint32_t struct_size; /* sizeof(edgeopt_npu_plugin) in the plugin's build */
  const char* name;
  const char* vendor;
  const char* version;

  /* Opens the device. Options are free-form key/value strings (device id, core mask, cache dir). */
  int (*init)(const edgeopt_npu_option* options, size_t option_count);
  void (*get_capabilities)(edgeopt_npu_capabilities* out);
  /* 1 if the node can run on the device, else 0 with a one-line reason in reason[reason_size]. */
  int (*supports)(const edgeopt_npu_node* node, char* reason, size_t reason_size);
  /* Compiles a chain of supported nodes. */
  int (*compile)(const edgeopt_npu_subgraph* subgraph, edgeopt_npu_graph** out);
  /* Loads a precompiled artifact (.rknn, QNN context binary, ...); NULL if the plugin has none. */
  int (*load_blob)(const void* blob, size_t size, edgeopt_npu_graph** out);
  /* Writes the artifact of a compiled graph (for caching); size gets the bytes needed. May be NULL. */
  int (*export_blob)(const edgeopt_npu_graph* graph, void* buffer, size_t capacity, size_t* size);
  /* The compiled graph's static batch and boundary widths. */
  int (*describe)(const edgeopt_npu_graph* graph, uint32_t* batch, int32_t* in_features, int32_t* out_features);
  /* Runs input [rows <= batch, in_features] -> output [rows, out_features], both float32. */
  int (*execute)(edgeopt_npu_graph* graph, const edgeopt_npu_tensor* input, edgeopt_npu_tensor* output);
  void (*release)(edgeopt_npu_graph* graph);
  /* The message of the last failure on the calling thread (thread-local), or "". */
  const char* (*last_error)(void);
  /* Closes the device; called once, before the library is unloaded. */
  void (*shutdown)(void);
} edgeopt_npu_plugin;

typedef const edgeopt_npu_plugin* (*edgeopt_npu_entry_fn)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* EDGEOPT_NPU_H_ */
