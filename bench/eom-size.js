// `npm run bench -- eom-size [--no-write]`: what the bytes of an .eom file are, plain and
// compressed (encodeEom(graph, { compress: true })), for the CNN fixtures in fp32 and static int8
// (per-channel weights, min/max grids calibrated on the first 500 train digits, as `npm start`
// does). Per file: the JSON header (graph description and tensor entry list), int8 weights,
// float32 biases, per-channel scales; each part also compressed alone (brotli, the same settings),
// which shows what the compressed file is made of. Sizes are deterministic; the load times
// (decodeEom medians, plain vs compressed, same run) are measurements. Writes
// bench/results/eom-size.json for docs/benchmarks.md.
'use strict';
const path = require('node:path');
const zlib = require('node:zlib');
const C = require('./support/common');

const ROOT = path.resolve(__dirname, '..');
const FIXTURES = {
  'mobilenet-mini-1x28x28': path.join(ROOT, 'data', 'models', 'mobilenet-mini-1x28x28', 'model.onnx'),
  'lenet5-1x28x28': path.join(ROOT, 'test', 'fixtures', 'lenet5-1x28x28', 'model.onnx'),
};

const brotli = (b) =>
  zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.length } })
    .length;

/** Byte planes of a float32 array (what the compressed form stores). */
function planes(f) {
  const b = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  const n = f.length;
  const out = new Uint8Array(b.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < 4; k++) out[k * n + i] = b[i * 4 + k];
  return out;
}

/** The parts of a plain .eom: header JSON, int8 weights, float32 data (biases or fp32 weights), scales. */
function parts(E, g) {
  const bytes = E.encodeEom(g);
  const headerBytes = Number(bytes.readBigUInt64LE(0));
  const concat = (arrays) => Buffer.concat(arrays.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)));
  const tensors = Object.values(g.tensors).filter((t) => t.data);
  const int8 = concat(tensors.filter((t) => t.data instanceof Int8Array).map((t) => t.data));
  const floats = tensors.filter((t) => t.data instanceof Float32Array).map((t) => t.data);
  const scales = tensors.filter((t) => t.quant).map((t) => t.quant.scale);
  const f32 = Buffer.concat(floats.map((f) => planes(f)));
  const sc = Buffer.concat(scales.map((f) => planes(f)));
  return {
    total: bytes.length,
    header: { bytes: 8 + headerBytes, alone: brotli(bytes.subarray(0, 8 + headerBytes)) },
    int8Weights: { bytes: int8.length, alone: int8.length ? brotli(int8) : 0 },
    float32: { bytes: f32.length, alone: f32.length ? brotli(f32) : 0 },
    scales: { bytes: sc.length, alone: sc.length ? brotli(sc) : 0 },
  };
}

function decodeMs(E, bytes, seconds) {
  const times = [];
  const end = C.now() + seconds * 1000;
  while (C.now() < end || times.length < 5) {
    const t0 = C.now();
    E.decodeEom(bytes);
    times.push(C.now() - t0);
  }
  return C.round(C.summarize(times).median, 3);
}

async function run(argv) {
  const write = !argv.includes('--no-write');
  const E = C.loadEdgeopt();
  const started = C.now();
  const machine = C.machine();
  const calibration = E.sliceRows(E.mnistTrain(), 0, 500);
  const rows = [];
  for (const [id, file] of Object.entries(FIXTURES)) {
    const fp32 = E.loadModel(file);
    const int8 = E.quantizeGraph(fp32, { activations: 'static', calibration });
    const files = {};
    for (const [kind, g] of [
      ['fp32', fp32],
      ['int8', int8],
    ]) {
      const plain = E.encodeEom(g);
      const compressed = E.encodeEom(g, { compress: true });
      // Plain and compressed loads alternate in rounds, so a load change hits both alike.
      const ms = { plain: [], compressed: [] };
      for (let r = 0; r < 3; r++) {
        ms.plain.push(decodeMs(E, plain, 0.3));
        ms.compressed.push(decodeMs(E, compressed, 0.3));
      }
      const med = (v) => v.sort((a, b) => a - b)[1];
      files[kind] = { ...parts(E, g), compressed: compressed.length, decodeMs: { plain: med(ms.plain), compressed: med(ms.compressed) } };
    }
    const row = {
      model: id,
      files,
      ratios: {
        int8VsFp32: C.round(files.int8.total / files.fp32.total, 3),
        int8CompressedVsFp32: C.round(files.int8.compressed / files.fp32.total, 3),
        int8CompressedVsFp32Compressed: C.round(files.int8.compressed / files.fp32.compressed, 3),
      },
    };
    rows.push(row);
    console.log(`${id}: ${JSON.stringify(row)}`);
  }
  const result = {
    command: `npm run bench -- eom-size${argv.length ? ' ' + argv.join(' ') : ''}`,
    machine: {
      ...machine,
      loadavgEnd: require('node:os')
        .loadavg()
        .map((x) => Math.round(x * 100) / 100),
    },
    durationSeconds: Math.round((C.now() - started) / 100) / 10,
    rows,
  };
  if (write) console.log(`wrote ${path.relative(process.cwd(), C.writeResult('eom-size', result))}`);
  return result;
}

module.exports = { run };
