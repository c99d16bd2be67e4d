import { EdgeInferenceEngine, defaultCnn, mnistTest } from 'edgeopt';

const engine = new EdgeInferenceEngine();
await engine.loadModel('cnn', defaultCnn()); // the bundled mobilenet-mini-1x28x28; or an .onnx/.eom path
console.log(engine.modelInfo('cnn')); // { inputs: [{ name: 'input', shape: [null, 1, 28, 28] }], outputs: [{ name: 'logits', shape: [null, 10] }] }
const images = mnistTest().data.subarray(0, 8 * 784);
const out = await engine.runModel('cnn', { input: { data: images, shape: [8, 1, 28, 28] } }); // or runModelSync
console.log('logits', out.logits.shape, 'first row', Array.from(out.logits.data.subarray(0, 10), (v) => v.toFixed(2)).join(' '));
console.log(engine.memory('cnn')); // per image: { weightBytes, arenaBytes, liveBytesBound }
console.log(engine.placement('cnn').slice(0, 3)); // [{ node: 'stem.stem.0.Conv', op: 'Conv', backend: 'native', kernel: ... }, ...]
