/**
 * The .eom container: round trips, readability by a generic safetensors
 * reader, and every kind of malformed file giving E_FORMAT without crashing
 * or allocating what the header claims.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import * as zlib from 'node:zlib';
import { defaultModel } from '../lib/data/bundled';
import { readNpy } from '../lib/data/npy';
import { EdgeInferenceEngine } from '../lib/engine/engine';
import { decodeEom, encodeEom } from '../lib/model/eom';
import { loadModel, saveModel } from '../lib/model';
import type { Graph } from '../lib/model/graph';
import { pruneGraph } from '../lib/optimizer/prune';
import { quantizeGraph } from '../lib/optimizer/quantize';
import { rejectsCode, sameFloats, sameInts, throwsCode } from './helpers';

const fp32 = defaultModel();
const int8 = quantizeGraph(pruneGraph(fp32, { sparsity: 0.5 }), { bits: 8 });

/** What any safetensors reader does: header length, JSON, offsets. */
function listSafetensors(bytes: Buffer): Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + n));
  delete header.__metadata__;
  return header;
}

function withHeader(header: unknown, data: Buffer = Buffer.alloc(0), lengthOverride?: bigint): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

/** Same tensors, quant parameters, masks, nodes and grids, bit for bit. */
function sameGraph(back: Graph, g: Graph): void {
  assert.equal(back.nodes, g.nodes);
  assert.equal(back.inputs, g.inputs);
  assert.equal(back.outputs, g.outputs);
  assert.equal(back.metadata, g.metadata);
  assert.equal(back.activationQuant, g.activationQuant);
  assert.equal(Object.keys(back.tensors).sort(), Object.keys(g.tensors).sort());
  for (const [name, t] of Object.entries(g.tensors)) {
    const b = back.tensors[name];
    assert.equal([b.dtype, b.shape], [t.dtype, t.shape], name);
    if (t.data instanceof Float32Array) sameFloats(b.data as Float32Array, t.data, name);
    else if (t.data) sameInts(b.data!, t.data, name);
    assert.equal({ ...b.quant, scale: undefined }, { ...t.quant, scale: undefined }, `${name} quant`);
    if (t.quant) sameFloats(b.quant!.scale, t.quant.scale, `${name} scale`);
    if (t.mask) sameInts(b.mask!, t.mask, `${name} mask`);
  }
}

test('round trip keeps every tensor, quant parameter, mask and node', () => {
  for (const g of [fp32, int8]) sameGraph(decodeEom(encodeEom(g)), g);
});

test('a generic safetensors reader lists every tensor with contiguous offsets', () => {
  const bytes = encodeEom(int8);
  const entries = Object.entries(listSafetensors(bytes)).sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const names = entries.map(([n]) => n);
  assert.ok(names.includes('fc1.weight') && names.includes('fc1.weight::scale') && names.includes('fc1.weight::mask'));
  let end = 0;
  for (const [, e] of entries) {
    assert.is(e.data_offsets[0], end, 'no holes between tensors');
    end = e.data_offsets[1];
  }
  assert.is(8 + Number(bytes.readBigUInt64LE(0)) + end, bytes.length, 'data section ends at the end of the file');
  assert.is(Number(bytes.readBigUInt64LE(0)) % 8, 0, 'header padded to 8 bytes');
  const dense = listSafetensors(encodeEom(quantizeGraph(fp32)))['fc1.weight'];
  assert.equal([dense.dtype, dense.shape], ['I8', [128, 784]]);
  const sparse = listSafetensors(bytes)['fc1.weight'];
  assert.equal([sparse.dtype, sparse.shape], ['I8', [(128 * 784) / 2]], 'a pruned tensor stores only its kept values');
});

test('low-bit, group-wise, asymmetric and sparse tensors round trip and shrink the file', () => {
  const fpBytes = encodeEom(fp32).length;
  const cases = [
    [quantizeGraph(fp32, { bits: 4 }), 0.15],
    [quantizeGraph(fp32, { bits: 4, granularity: { group: 32 } }), 0.15],
    [quantizeGraph(fp32, { bits: 2, granularity: { group: 64 } }), 0.1],
    [quantizeGraph(fp32, { bits: 8, granularity: 'global' }), 0.27],
    [pruneGraph(fp32, { sparsity: 0.7 }), 0.35],
    [quantizeGraph(pruneGraph(fp32, { sparsity: 0.5, mode: '2:4' }), { bits: 4 }), 0.11],
  ] as const;
  for (const [g, limit] of cases) {
    const bytes = encodeEom(g);
    assert.ok(bytes.length <= limit * fpBytes, `${g.metadata.quantization ?? g.metadata.pruning}: ${bytes.length} bytes`);
    const back = decodeEom(bytes);
    for (const [name, t] of Object.entries(g.tensors)) {
      if (t.data instanceof Float32Array) sameFloats(back.tensors[name].data as Float32Array, t.data, name);
      else if (t.data) sameInts(back.tensors[name].data!, t.data, name);
      assert.equal(back.tensors[name].quant?.zeroPoint, t.quant?.zeroPoint);
      assert.equal(back.tensors[name].quant?.groupSize, t.quant?.groupSize);
      if (t.quant) sameFloats(back.tensors[name].quant!.scale, t.quant.scale, `${name} scales`);
    }
  }
});

test('saveModel writes atomically and loadModel reads it back', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-eom-'));
  const file = path.join(dir, 'm.eom');
  const size = saveModel(int8, file);
  const plain = saveModel(quantizeGraph(fp32), path.join(dir, 'plain.eom'));
  assert.ok(plain <= 0.27 * encodeEom(fp32).length, `int8 file ${plain} bytes`);
  assert.ok(size < plain * 1.15, `the pruning mask costs one bit per weight (${size} vs ${plain})`);
  fs.rmSync(path.join(dir, 'plain.eom'));
  assert.is(fs.statSync(file).size, size);
  assert.equal(fs.readdirSync(dir), ['m.eom'], 'no temp file left behind');
  assert.equal(loadModel(file).nodes, int8.nodes);
  fs.rmSync(dir, { recursive: true });
});

test('truncated files are E_FORMAT', () => {
  const bytes = encodeEom(fp32);
  throwsCode(() => decodeEom(bytes.subarray(0, 5)), 'E_FORMAT', /truncated/);
  throwsCode(() => decodeEom(bytes.subarray(0, 200)), 'E_FORMAT', /header length/);
  throwsCode(() => decodeEom(bytes.subarray(0, bytes.length - 1)), 'E_FORMAT', /byte|spans/);
});

test('a header length beyond the end of the file is E_FORMAT', () => {
  throwsCode(() => decodeEom(withHeader({}, Buffer.alloc(0), 2n ** 60n)), 'E_FORMAT', /past the end/);
});

test('a header that is not JSON is E_FORMAT', () => {
  const bad = Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{nope')]);
  throwsCode(() => decodeEom(bad), 'E_FORMAT', /not JSON/);
});

test('a tensor whose byte range lies outside the file is E_FORMAT', () => {
  const f = withHeader({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, Buffer.alloc(8));
  throwsCode(() => decodeEom(f), 'E_FORMAT', /'w' spans bytes 0..16/);
});

test('sizes declared in the terabytes are refused before any allocation', () => {
  const tera = withHeader({ w: { dtype: 'F32', shape: [1e6, 1e6, 1e6], data_offsets: [0, 16] } }, Buffer.alloc(16));
  const before = process.memoryUsage().rss;
  throwsCode(() => decodeEom(tera), 'E_FORMAT', /declares shape/);
  assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'no large allocation');
  const hugeOffsets = withHeader({ w: { dtype: 'F32', shape: [2 ** 40], data_offsets: [0, 2 ** 42] } }, Buffer.alloc(16));
  throwsCode(() => decodeEom(hugeOffsets), 'E_FORMAT', /spans bytes/);
});

test('overlapping tensors, unknown dtypes, bad shapes and missing graphs are E_FORMAT', () => {
  const data = Buffer.alloc(16);
  throwsCode(
    () =>
      decodeEom(
        withHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data),
      ),
    'E_FORMAT',
    /overlap/,
  );
  throwsCode(() => decodeEom(withHeader({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, data)), 'E_FORMAT', /dtype/);
  throwsCode(() => decodeEom(withHeader({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 8] } }, data)), 'E_FORMAT', /shape/);
  throwsCode(() => decodeEom(withHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data)), 'E_FORMAT', /edgeopt_graph/);
  throwsCode(
    () => decodeEom(withHeader({ __metadata__: { eom_version: '1', edgeopt_graph: '{"nodes": 3' } }, data)),
    'E_FORMAT',
    /metadata is not JSON/,
  );
});

test('a graph that references a missing tensor entry is E_FORMAT', () => {
  const bytes = encodeEom(fp32);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + n));
  const meta = JSON.parse(header.__metadata__.edgeopt_graph);
  meta.tensors['fc1.weight'].data = 'nope';
  header.__metadata__.edgeopt_graph = JSON.stringify(meta);
  throwsCode(() => decodeEom(withHeader(header, bytes.subarray(8 + n))), 'E_FORMAT', /missing entry 'nope'/);
});

test('loadModel: a missing file is E_NOT_FOUND, a non-model is E_FORMAT/E_ARGUMENT', () => {
  throwsCode(() => loadModel('/nonexistent/model.eom'), 'E_NOT_FOUND', /model\.eom/);
  throwsCode(() => loadModel(new Uint8Array([1, 2, 3])), 'E_FORMAT');
  throwsCode(() => loadModel({ nope: true } as never), 'E_ARGUMENT');
});

test('mutated .eom bytes only ever load or throw EdgeOptError', () => {
  const bytes = encodeEom(int8);
  let seed = 1;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(bytes);
    const headerEnd = 8 + Number(bytes.readBigUInt64LE(0));
    for (let j = 0; j < 1 + rand(4); j++) b[rand(i % 2 ? headerEnd : b.length)] = rand(256);
    try {
      decodeEom(b);
    } catch (err) {
      assert.is((err as { name: string }).name, 'EdgeOptError', String(err));
    }
  }
});

/** The bundled model's .eom with its header JSON text replaced (the data section kept). */
function withHeaderText(edit: (json: string) => string): Buffer {
  const bytes = encodeEom(fp32);
  const n = Number(bytes.readBigUInt64LE(0));
  const json = Buffer.from(edit(bytes.toString('utf8', 8, 8 + n)));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, bytes.subarray(8 + n)]);
}

/** The bundled model's .eom with its graph metadata edited. */
function withGraphMeta(edit: (meta: Record<string, unknown>) => unknown): Buffer {
  return withHeaderText((json) => {
    const header = JSON.parse(json);
    header.__metadata__.edgeopt_graph = JSON.stringify(edit(JSON.parse(header.__metadata__.edgeopt_graph)) ?? null);
    return JSON.stringify(header);
  });
}

test('duplicate keys anywhere in the header or the graph are E_FORMAT, not last-one-wins', () => {
  const twice = withHeaderText((json) =>
    json.replace('{"__metadata__"', '{"fc1.bias":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"__metadata__"'),
  );
  throwsCode(() => decodeEom(twice), 'E_FORMAT', /repeats the key "fc1\.bias"/);
  const escaped = withHeaderText((json) =>
    json.replace('{"__metadata__"', '{"fc1\\u002ebias":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"__metadata__"'),
  );
  throwsCode(() => decodeEom(escaped), 'E_FORMAT', /repeats the key/);
  const field = withHeaderText((json) => json.replace('"dtype":"F32"', '"dtype":"F32","dtype":"I8"'));
  throwsCode(() => decodeEom(field), 'E_FORMAT', /repeats the key "dtype"/);
  const node = withHeaderText((json) => {
    const header = JSON.parse(json);
    header.__metadata__.edgeopt_graph = header.__metadata__.edgeopt_graph.replace('"name":"fc1"', '"name":"fc1","name":"fc9"');
    return JSON.stringify(header);
  });
  throwsCode(() => decodeEom(node), 'E_FORMAT', /edgeopt_graph metadata: JSON repeats the key "name"/);
});

test('JSON bombs are refused before parsing: deep nesting, 300,000 entries, an oversized header', () => {
  const deep = withHeaderText(() => '['.repeat(1_000_000) + ']'.repeat(1_000_000));
  throwsCode(() => decodeEom(deep), 'E_FORMAT', /nests deeper than 16 levels/);
  const entries = Array.from({ length: 300_000 }, (_, i) => `"${i.toString(36)}":{}`).join(',');
  throwsCode(() => decodeEom(withHeaderText(() => `{${entries}}`)), 'E_FORMAT', /more than 250000 values/);
  const graphBomb = withHeaderText((json) => {
    const header = JSON.parse(json);
    header.__metadata__.edgeopt_graph = `{"nodes":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    return JSON.stringify(header);
  });
  throwsCode(() => decodeEom(graphBomb), 'E_FORMAT', /edgeopt_graph metadata: JSON nests deeper/);
  const huge = withHeaderText(() => `{"__metadata__":{"pad":"${'x'.repeat(5 * 2 ** 20)}"}}`);
  throwsCode(() => decodeEom(huge), 'E_FORMAT', /exceeds the 4194304-byte limit/);
});

test('loadModel and readNpy take regular files only, size checked first: /dev/zero, a FIFO, a folder', () => {
  throwsCode(() => loadModel('/dev/zero'), 'E_FORMAT', /\/dev\/zero.*regular file.*character device/);
  throwsCode(() => readNpy('/dev/zero'), 'E_FORMAT', /character device/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-eom-'));
  try {
    throwsCode(() => loadModel(dir), 'E_FORMAT', /a directory/);
    const fifo = path.join(dir, 'model.eom');
    if (spawnSync('mkfifo', [fifo]).status === 0) throwsCode(() => loadModel(fifo), 'E_FORMAT', /a FIFO/); // never blocks on open
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a graph input without a shape, tensors: null and other missing containers are E_FORMAT, not TypeError', async () => {
  const noShape = withGraphMeta((m) => ({ ...m, inputs: [{ name: 'input' }] }));
  throwsCode(() => decodeEom(noShape), 'E_FORMAT', /input 'input' needs a shape/);
  throwsCode(() => decodeEom(withGraphMeta((m) => ({ ...m, tensors: null }))), 'E_FORMAT', /lacks nodes, inputs, outputs or tensors/);
  throwsCode(() => decodeEom(withGraphMeta((m) => ({ ...m, nodes: [null] }))), 'E_FORMAT', /node 0 is not an object/);
  const badShape = withGraphMeta((m) => {
    const t = m.tensors as Record<string, Record<string, unknown>>;
    t['fc1.weight'].shape = 7;
    return m;
  });
  throwsCode(() => decodeEom(badShape), 'E_FORMAT', /'fc1\.weight' has an invalid shape/);
  throwsCode(() => decodeEom(withGraphMeta((m) => ({ ...m, metadata: { a: {} } }))), 'E_FORMAT', /metadata must map names to strings/);
  const graphs: Array<[string, Graph, RegExp]> = [
    ['tensors: null', { ...fp32, tensors: null as never }, /tensors must be an object, got null/],
    ['no input shape', { ...fp32, inputs: [{ name: fp32.inputs[0].name } as never] }, /needs a shape/],
    ['node without inputs', { ...fp32, nodes: [{ ...fp32.nodes[0], inputs: undefined as never }] }, /arrays of input and output names/],
  ];
  for (const [what, g, message] of graphs) {
    throwsCode(() => loadModel(g), 'E_FORMAT', message);
    await rejectsCode(new EdgeInferenceEngine().loadModel('m', g), 'E_FORMAT', message);
    assert.ok(what);
  }
});

// ---------------------------------------------------------------- the compressed form

/** A compressed file with its envelope header edited (`at` byte offsets) and/or its stream replaced. */
function envelopeWith(bytes: Buffer, edit: (b: Buffer) => void): Buffer {
  const b = Buffer.from(bytes);
  edit(b);
  return b;
}

test('compress: true round trips every kind of tensor bit for bit and is smaller; plain readers refuse it cleanly', () => {
  const cases = [fp32, int8, quantizeGraph(fp32, { bits: 4, granularity: { group: 32 } }), quantizeGraph(fp32, { bits: 3 })];
  for (const g of cases) {
    const plain = encodeEom(g);
    const z = encodeEom(g, { compress: true });
    assert.is(z.toString('latin1', 0, 4), 'EOMZ');
    assert.ok(z.length < plain.length, `${g.metadata.quantization ?? 'fp32'}: ${z.length} vs ${plain.length} bytes`);
    assert.ok(Number(z.readBigUInt64LE(0)) > z.length, 'as a safetensors header length it runs past the file');
    assert.ok(encodeEom(g, { compress: true }).equals(z), 'deterministic');
    sameGraph(decodeEom(z), g);
    sameGraph(loadModel(z), g); // sniffed by its magic, not by a file name
  }
});

test('saveModel({ compress: true }) writes a file loadModel and the engine read, with the same outputs', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-eom-'));
  const file = path.join(dir, 'm.bin');
  const size = saveModel(int8, file, { compress: true });
  assert.is(fs.statSync(file).size, size);
  assert.ok(size < encodeEom(int8).length);
  const engine = new EdgeInferenceEngine({ device: 'ts' });
  await engine.loadModel('z', file);
  await engine.loadModel('p', encodeEom(int8));
  const x = { data: new Float32Array(3 * 784).map((_, i) => (i % 29) / 29), shape: [3, 784] };
  sameFloats((await engine.infer('z', x)).data, (await engine.infer('p', x)).data, 'compressed vs plain');
  engine.dispose();
  fs.rmSync(dir, { recursive: true });
});

test('a model that compresses past the reader bound (all-zero weights) is written plain', () => {
  const zeros: Graph = { ...fp32, tensors: { ...fp32.tensors } };
  for (const [name, t] of Object.entries(fp32.tensors)) if (t.data) zeros.tensors[name] = { ...t, data: new Float32Array(t.data.length) };
  const bytes = encodeEom(zeros, { compress: true });
  assert.is(bytes[8], 0x7b, 'the plain safetensors form');
  sameGraph(decodeEom(bytes), zeros);
});

test('compressed files: bad envelopes, lying lengths and corrupt streams are E_FORMAT, bounded before decompression', () => {
  const z = encodeEom(int8, { compress: true });
  const plainLength = Number(z.readBigUInt64LE(8));
  throwsCode(() => decodeEom(z.subarray(0, 10)), 'E_FORMAT', /truncated/);
  throwsCode(() => decodeEom(envelopeWith(z, (b) => (b[4] = 9))), 'E_FORMAT', /envelope version 9/);
  throwsCode(() => decodeEom(envelopeWith(z, (b) => (b[5] = 0x81))), 'E_FORMAT', /unknown flags/);
  throwsCode(() => decodeEom(envelopeWith(z, (b) => (b[7] = 1))), 'E_FORMAT', /unknown flags/);
  throwsCode(() => decodeEom(envelopeWith(z, (b) => b.writeBigUInt64LE(0n, 8))), 'E_FORMAT', /declares 0/);
  // A bomb: 16 bytes of header and a short stream may not ask for more than 1024x its size.
  const tooBig = BigInt(z.length - 16) * 1024n + 1n;
  const before = process.memoryUsage().rss;
  throwsCode(() => decodeEom(envelopeWith(z, (b) => b.writeBigUInt64LE(tooBig, 8))), 'E_FORMAT', /at most 1024x/);
  throwsCode(() => decodeEom(envelopeWith(z, (b) => b.writeBigUInt64LE(2n ** 62n, 8))), 'E_FORMAT', /declares/);
  assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'no large allocation');
  // The stream may not run past, or stop short of, the declared length.
  throwsCode(
    () => decodeEom(envelopeWith(z, (b) => b.writeBigUInt64LE(BigInt(plainLength - 1), 8))),
    'E_FORMAT',
    /longer than the declared/,
  );
  throwsCode(() => decodeEom(envelopeWith(z, (b) => b.writeBigUInt64LE(BigInt(plainLength + 1), 8))), 'E_FORMAT', /holds \d+ bytes/);
  throwsCode(() => decodeEom(z.subarray(0, z.length - 7)), 'E_FORMAT', /corrupt/);
  // Plain bytes that are not an .eom, or another envelope, fail as the plain reader does.
  const wrap = (inner: Buffer) => {
    const head = Buffer.from(z.subarray(0, 16));
    head.writeBigUInt64LE(BigInt(inner.length), 8);
    return Buffer.concat([head, zlib.brotliCompressSync(inner)]);
  };
  throwsCode(() => decodeEom(wrap(Buffer.from('not a safetensors file at all'))), 'E_FORMAT', /header length/);
  throwsCode(() => decodeEom(wrap(z)), 'E_FORMAT', /header length/);
});

test('mutated compressed .eom bytes only ever load or throw EdgeOptError', () => {
  const bytes = encodeEom(int8, { compress: true });
  let seed = 7;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
  let refused = 0;
  for (let i = 0; i < 200; i++) {
    const b = Buffer.from(bytes);
    for (let j = 0; j < 1 + rand(3); j++) b[rand(i % 3 ? b.length : 64)] = rand(256);
    try {
      decodeEom(b);
    } catch (err) {
      assert.is((err as { name: string }).name, 'EdgeOptError', String(err));
      refused++;
    }
  }
  assert.ok(refused > 150, `${refused} of 200 mutants refused`);
});

test.run();
