import { EdgeInferenceEngine, InferenceServer, defaultModel, foldInputNormalization, quantizeGraph, mnistTest } from 'edgeopt';

// A camera-ready model: the /255 scaling folded into the first layer, so raw uint8 pixels feed it directly.
const model = quantizeGraph(foldInputNormalization(defaultModel()));
const engine = new EdgeInferenceEngine();
engine.on('fallback', (e) => console.warn(`${e.modelId}/${e.node}: ${e.from} -> ${e.to}: ${e.reason}`));
const mnist = await engine.loadModel('mnist', model, { batching: { maxBatch: 32, maxDelayMs: 1 } });
console.log(mnist.inputMetadata, mnist.outputNames); // [{ name: 'input', dtype: 'uint8', shape: [null, 784] }] ['fc2.out']

// 100 concurrent one-digit runs become a few batched engine calls, bit-identical to runs one by one.
const digits = mnistTest();
const digit = (i) => ({ input: { data: digits.raw.subarray(i * 784, (i + 1) * 784), dims: [1, 784] } });
let batches = 0;
mnist.batcher.on('batch', () => batches++);
const outs = await Promise.all(Array.from({ length: 100 }, (_, i) => mnist.run(digit(i))));
const same = outs.every((o, i) => {
  const alone = mnist.runSync(digit(i))['fc2.out'].data;
  return o['fc2.out'].data.every((v, j) => v === alone[j]);
});
console.log(`100 runs in ${batches} batches, identical to unbatched runs: ${same}`);

// Cancellation: an aborted run rejects with an AbortError (a queued one never runs).
const ac = new AbortController();
const pending = mnist.run(digit(0), { signal: ac.signal });
ac.abort();
await pending.catch((e) => console.log(`${e.name} (${e.code})`));

// Over HTTP, as `edgeopt serve` runs it: POST /v1/models/mnist:predict, GET /healthz, GET /metrics.
const server = new InferenceServer([mnist], { port: 0 }); // 127.0.0.1, a free port
const url = await server.listen();
const res = await fetch(`${url}/v1/models/mnist:predict`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ instances: [Array.from(digit(7).input.data)] }),
});
const [logits] = (await res.json()).predictions;
console.log(`HTTP ${res.status}: digit ${logits.indexOf(Math.max(...logits))}, label ${digits.labels[7]}`);
console.log((await (await fetch(`${url}/metrics`)).text()).match(/^edgeopt_requests_total.*$/m)[0]);
await server.close();
await mnist.release();
