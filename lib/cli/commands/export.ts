import type { Command } from 'commander';
import { EdgeOptError } from '../../errors';
import { loadModel } from '../../model';
import { type Int8Format, saveOnnx } from '../../model/onnx';

export function register(program: Command): void {
  program
    .command('export')
    .description('write a model (.eom or .onnx) as an ONNX file that onnxruntime runs')
    .argument('<model>', 'the model file (.eom, or .onnx to re-export)')
    .requiredOption('-o, --output <file>', 'the .onnx file to write')
    .option(
      '--int8 <format>',
      "how int8 layers are written: 'integer' (DynamicQuantizeLinear + MatMulInteger) or 'qdq' (DequantizeLinear weights)",
      'integer',
    )
    .action((model: string, opts: { output: string; int8: string }) => {
      if (opts.int8 !== 'integer' && opts.int8 !== 'qdq')
        throw new EdgeOptError('E_ARGUMENT', `--int8 must be 'integer' or 'qdq', got '${opts.int8}'`);
      const graph = loadModel(model);
      const bytes = saveOnnx(graph, opts.output, { int8: opts.int8 as Int8Format });
      const layers = graph.nodes
        .filter((n) => n.op === 'Dense' || n.op === 'QDense')
        .map((n) => n.op)
        .join(', ');
      console.log(`wrote ${opts.output}: ${bytes} bytes, layers ${layers}`);
    });
}
