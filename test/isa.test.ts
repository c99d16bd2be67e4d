/**
 * EDGEOPT_ISA is a forced setting: a table this binary lacks, or one this CPU
 * cannot run, makes an engine asked for the native core (device 'cpu' or 'npu')
 * throw E_ISA; 'auto' runs TypeScript and says so with a 'fallback' event per
 * node. Each case runs in a child process, since the addon reads the variable once.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { backendInfo } from '../lib/backends';

interface DeviceResult {
  device: string;
  code?: string;
  message?: string;
  backends?: string[];
  reasons?: string[];
  events?: number;
}

function withIsa(isa: string): { info: { native: boolean; reason?: string }; devices: DeviceResult[] } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'fixtures', 'isa-engine.ts')], {
    env: { ...process.env, EDGEOPT_ISA: isa, EDGEOPT_FORCE_TS: '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function assertRefused(isa: string, why: RegExp): void {
  const { info, devices } = withIsa(isa);
  assert.is(info.native, false);
  const byDevice = Object.fromEntries(devices.map((d) => [d.device, d]));
  for (const device of ['cpu', 'npu']) {
    assert.is(byDevice[device].code, 'E_ISA', `${isa}, device ${device}: ${JSON.stringify(byDevice[device])}`);
    assert.match(byDevice[device].message!, why);
  }
  const auto = byDevice.auto;
  assert.ok(
    auto.backends!.every((b) => b === 'ts'),
    `auto runs TypeScript: ${auto.backends}`,
  );
  assert.ok(
    auto.reasons!.every((r) => why.test(r)),
    `auto says why: ${auto.reasons}`,
  );
  assert.is(auto.events, auto.backends!.length, 'one fallback event per node');
  assert.equal(byDevice.ts.events, 0);
}

const native = backendInfo().native && process.env.EDGEOPT_FORCE_TS !== '1';

test('an EDGEOPT_ISA no binary has: cpu and npu throw E_ISA, auto falls back with events', () => {
  if (!native) return;
  assertRefused('no-such-isa', /EDGEOPT_ISA=no-such-isa is unknown/);
});

test('a table this binary has but this CPU cannot run (where one exists) is refused the same way', () => {
  if (!native) return;
  const known = /this binary has (\S+)/.exec(withIsa('no-such-isa').devices[0].message!)![1].split('|');
  const runnable = new Set(backendInfo().kernels);
  const unrunnable = known.find((k) => !runnable.has(k));
  if (!unrunnable) return; // this CPU runs every table the binary has
  assertRefused(unrunnable, new RegExp(`EDGEOPT_ISA=${unrunnable} is not supported by this CPU`));
});

test('a table this CPU runs is honoured on every device', () => {
  if (!native) return;
  const { info, devices } = withIsa('scalar');
  assert.is(info.native, true);
  for (const d of devices.filter((x) => x.device !== 'ts'))
    assert.ok(
      d.backends?.every((b) => b === 'native'),
      JSON.stringify(d),
    );
});

test.run();
