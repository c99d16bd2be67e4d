// TypeScript: the package ships its .d.ts (it needs @types/node, as its API uses Node's EventEmitter and Buffer).
// Run with: npx tsx examples/typescript.mts
import { EdgeInferenceEngine, EdgeOptError, defaultModel, quantizeGraph, type InferOutput, type Placement } from 'edgeopt';

const engine = new EdgeInferenceEngine({ device: 'cpu' });
await engine.loadModel('mnist', quantizeGraph(defaultModel()));
const out: InferOutput = await engine.infer('mnist', new Float32Array(784));
const where: Placement[] = engine.placement('mnist');
console.log(out.shape, where.map((p) => `${p.node}: ${p.backend}`).join(', '));
try {
  await engine.infer('mnist', new Float32Array(3));
} catch (err) {
  if (err instanceof EdgeOptError) console.log(`refused with ${err.code}: ${err.message}`);
}
