// `npm run bench -- eom-size [--no-write]`: what the bytes of an .eom file are, plain and
// compressed (encodeEom(graph, { compress: true })), for the CNN fixtures in fp32 and static int8
// (per-channel weights, min/max grids calibrated on the first 500 train digits, as `npm start`
// does). Per file: the JSON header (graph description and tensor entry list), int8 weights,
// float32 values, int32 biases, per-channel scales; each part also compressed alone (brotli, the same settings),
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

/** Byte planes of 4-byte values (what the compressed form stores). */
function planes(b) {
  const n = b.length / 4;
  const out = new Uint8Array(b.length);
  for (let i = 0; i < n; i++) for (let k = 0; k < 4; k++) out[k * n + i] = b[i * 4 + k];
  return out;
}

/**
 * The parts of a plain .eom, read from its own header: the JSON header, int8 weights, float32 data
 * (fp32 weights, biases off their grid), int32 biases (int8 Convs' biases on their grid), scales.
 */
function parts(E, g) {
  const bytes = E.encodeEom(g);
  const headerBytes = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + headerBytes));
  const data = (pick) =>
    Buffer.concat(
      Object.entries(header)
        .filter(([name, e]) => name !== '__metadata__' && pick(name, e.dtype))
        .map(([, e]) => bytes.subarray(8 + headerBytes + e.data_offsets[0], 8 + headerBytes + e.data_offsets[1])),
    );
  const part = (b, wide) => ({ bytes: b.length, alone: b.length ? brotli(wide ? planes(b) : b) : 0 });
  const isScale = (name) => name.endsWith('::scale');
  return {
    total: bytes.length,
    header: { bytes: 8 + headerBytes, alone: brotli(bytes.subarray(0, 8 + headerBytes)) },
    int8Weights: part(
      data((name, t) => t === 'I8'),
      false,
    ),
    float32: part(
      data((name, t) => t === 'F32' && !isScale(name)),
      true,
    ),
    int32Biases: part(
      data((name, t) => t === 'I32'),
      true,
    ),
    scales: part(
      data((name, t) => t === 'F32' && isScale(name)),
      true,
    ),
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
