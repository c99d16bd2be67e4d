/** What the federated test suites share: a small model, tokens, a server on 127.0.0.1 and raw HTTP calls to it. */
import * as assert from 'uvu/assert';
import { kernels } from '../lib/backends';
import { mnistTrain } from '../lib/data/bundled';
import type { ClientUpdate } from '../lib/federated/aggregate';
import { decodeFrame, encodeFrame, f32Tensors } from '../lib/federated/codec';
import { paramSpecs, type Tensors } from '../lib/federated/params';
import { FederatedServer, type FederatedServerOptions } from '../lib/federated/server';
import { mlp } from '../lib/train/init';
import { randomF32, rng, sameFloats } from './helpers';

export const train = mnistTrain();
export const small = mlp([784, 8, 10], { seed: 1 });
export const specs = paramSpecs(small);
export const shapes = Object.fromEntries(specs.map((s) => [s.name, s.shape]));
export const tokens = { a: 'token-a-0123456789', b: 'token-b-0123456789', c: 'token-c-0123456789' };
export const dequant = kernels().dequantizeS8;

export function randomDelta(seed: number, scale = 0.01): Tensors {
  const r = rng(seed);
  return Object.fromEntries(
    specs.map((s) => [
      s.name,
      randomF32(
        s.shape.reduce((a, d) => a * d, 1),
        r,
        scale,
      ),
    ]),
  );
}

export function sameTensors(a: Tensors, b: Tensors, what: string): void {
  assert.equal(Object.keys(a).sort(), Object.keys(b).sort(), `${what}: names`);
  for (const k of Object.keys(a)) sameFloats(a[k], b[k], `${what} ${k}`);
}

export async function startServer(extra: Partial<FederatedServerOptions> = {}): Promise<{ server: FederatedServer; url: string }> {
  const server = new FederatedServer({ model: small, clients: tokens, rounds: 2, minClients: 2, roundTimeoutMs: 5000, ...extra });
  return { server, url: await server.listen(0) };
}

export async function call(
  url: string,
  token: string,
  method: 'GET' | 'POST',
  route: string,
  body?: Buffer,
): Promise<{ status: number; bytes: Buffer }> {
  const res = await fetch(url + route, {
    method,
    headers: { authorization: `Bearer ${token}` },
    body,
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) };
}

export async function task(url: string, token: string) {
  const r = await call(url, token, 'GET', '/v1/task');
  assert.is(r.status, 200);
  return decodeFrame(r.bytes, dequant);
}

export function updateFrame(round: number, delta: Tensors, numSamples = 10, shapeOf = shapes): Buffer {
  return encodeFrame({ round, numSamples, metrics: { loss: 1 } }, f32Tensors(delta, shapeOf));
}

export const asUpdate = (clientId: string, delta: Tensors, numSamples = 10): ClientUpdate => ({ clientId, numSamples, delta, metrics: {} });
