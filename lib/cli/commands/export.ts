import type { Command } from 'commander';
import * as path from 'node:path';
import { EdgeOptError } from '../../errors';
import type { Graph } from '../../model/graph';
import { type Int8Format, saveOnnx } from '../../model/onnx';
import { checkOutputPath, outputOption } from '../options';
import { loadModelArg } from './optimize';

/**
 * What the ONNX file will not say by itself: layers written dequantized (no opset-13 form) and
 * the activation quantization onnxruntime will do instead of edgeopt's.
 */
export function exportNotes(g: Graph, format: Int8Format): string[] {
  const notes: string[] = [];
  const qdense = g.nodes.filter((n) => n.op === 'QDense');
  const grouped = qdense.filter((n) => g.tensors[n.inputs[1]]?.quant?.groupSize);
  if (grouped.length) {
    notes.push(
      `warning: ${grouped.map((n) => n.name).join(', ')} ${grouped.length > 1 ? 'have' : 'has'} group-wise scales, which opset 13 cannot express: written dequantized to float32 (the file is larger and runs in fp32)`,
    );
  }
  const isStatic = !!g.activationQuant || qdense.some((n) => n.attrs.activationQuant === 'static');
  const dynamic = qdense.filter((n) => !n.attrs.activationQuant || n.attrs.activationQuant === 'dynamic');
  if (isStatic) {
    notes.push(
      `note: calibrated static activations are written as QDQ (QuantizeLinear/DequantizeLinear pairs with their scales and zero points${format === 'integer' ? ', whatever --int8 says' : ''}); onnxruntime fuses them into its int8 kernels, whose rounding may differ from edgeopt's by a step`,
    );
  } else if (format === 'integer' && dynamic.length > grouped.length) {
    notes.push(
      'note: DynamicQuantizeLinear quantizes activations per batch (one scale for all rows), edgeopt per row: onnxruntime reproduces edgeopt bit for bit when run one row per call, and differs slightly on multi-row batches',
    );
  }
  return notes;
}

export function register(program: Command): void {
  const cmd = program
    .command('export')
    .description('write a model (.eom, .onnx or a folder of fc<N>.weight/bias .npy files) as an ONNX file that onnxruntime runs')
    .argument('<model>', 'the model (.eom, .onnx to re-export, or a weights folder, as for optimize)')
    .option(
      '--int8 <format>',
      "how int8 layers are written: 'integer' (DynamicQuantizeLinear + MatMulInteger) or 'qdq' (DequantizeLinear weights)",
      'integer',
    )
    .option('--json', 'print { output, bytes, layers, notes } as JSON');
  outputOption(cmd, 'the .onnx file to write', true).action((model: string, opts: { output: string; int8: string; json?: boolean }) => {
    if (opts.int8 !== 'integer' && opts.int8 !== 'qdq')
      throw new EdgeOptError('E_ARGUMENT', `--int8 must be 'integer' or 'qdq', got '${opts.int8}'`);
    checkOutputPath(opts.output);
    const graph = loadModelArg(model);
    const format = opts.int8 as Int8Format;
    const bytes = saveOnnx(graph, opts.output, { int8: format });
    const layers = graph.nodes.filter((n) => n.op === 'Dense' || n.op === 'QDense' || n.op === 'Conv').map((n) => `${n.name} ${n.op}`);
    const notes = exportNotes(graph, format);
    if (opts.json) return console.log(JSON.stringify({ output: path.resolve(opts.output), bytes, int8: format, layers, notes }, null, 2));
    console.log(`wrote ${opts.output}: ${bytes} bytes, layers ${layers.join(', ')}`);
    for (const n of notes) console.error(n);
  });
}
