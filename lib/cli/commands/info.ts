import type { Command } from 'commander';
import { backendInfo } from '../../backends';
import { EdgeInferenceEngine, type Device } from '../../engine/engine';

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

/** `edgeopt info [model]`: the backend in use; with a model, its inputs/outputs, memory report and placement. */
export function register(program: Command): void {
  program
    .command('info [model]')
    .description(
      'show the backend in use (native or TypeScript, kernel table, CPU features); with a model (.eom/.onnx): its memory per image and where every node runs',
    )
    .option('--device <device>', 'auto | npu | cpu | ts (for the placement)', 'auto')
    .option('--json', 'print backendInfo() (and the model report) as JSON')
    .action((model: string | undefined, opts: { json?: boolean; device: Device }) => {
      const info = backendInfo();
      if (!model) {
        if (opts.json) return console.log(JSON.stringify(info));
        console.log(`backend:  ${info.native ? 'native' : 'typescript'}`);
        console.log(`kernel:   ${info.kernel}`);
        console.log(`kernels:  ${info.kernels.join(', ')}`);
        console.log(`cpu isa:  ${info.isa.join(', ') || '(none detected)'}`);
        for (const t of info.unavailable) console.log(`not here: ${t.name} (the CPU lacks ${t.missing.join(', ')})`);
        for (const n of info.notes) console.log(`note:     ${n}`);
        if (info.reason) console.log(`reason:   ${info.reason}`);
        return;
      }
      const engine = new EdgeInferenceEngine({ device: opts.device });
      engine.loadModelSync('model', model);
      const report = {
        backend: info,
        model: engine.modelInfo('model'),
        memory: engine.memory('model'),
        placement: engine.placement('model'),
      };
      if (opts.json) return console.log(JSON.stringify(report));
      const shape = (s: Array<number | null>) => `[${s.map((d) => d ?? 'N').join(', ')}]`;
      console.log(`backend:  ${info.native ? `native (${info.kernel})` : `typescript (${info.reason})`}`);
      for (const i of report.model.inputs) console.log(`input:    ${i.name} ${shape(i.shape)}`);
      for (const o of report.model.outputs) console.log(`output:   ${o.name} ${shape(o.shape)}`);
      const m = report.memory;
      console.log(
        `memory per image: weights ${kib(m.weightBytes)}, activation arena ${kib(m.arenaBytes)} (liveness bound ${kib(m.liveBytesBound)}, ${(m.arenaBytes / Math.max(1, m.liveBytesBound)).toFixed(2)}x); a batch of N needs N x the arena`,
      );
      console.log('placement:');
      for (const p of report.placement) {
        const how = p.fusedInto ? `fused into ${p.fusedInto}` : (p.kernel ?? '');
        console.log(`  ${p.node.padEnd(40)} ${p.op.padEnd(18)} ${p.backend.padEnd(7)} ${how}${p.reason ? `  (${p.reason})` : ''}`);
      }
    });
}
