/** ONNX interop: import (loadOnnx) and export (saveOnnx, encodeOnnx). */
export { loadOnnx, importOnnx, looksLikeOnnx, IR_VERSIONS, OPSETS } from './import';
export { SUPPORTED_OPS as ONNX_SUPPORTED_OPS } from './ops';
export { saveOnnx, encodeOnnx, EXPORT_OPSET, type Int8Format, type OnnxExportOptions } from './export';
