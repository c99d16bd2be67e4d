/**
 * Every writer (saveModel, saveOnnx, writeNpy, federated checkpoints) goes
 * through writeFileAtomic: a symlink planted where a temp file would go is never
 * written through, a failed write leaves no temp file and says E_IO, a killed
 * writer's leftovers are swept by the next write, and kill -9 mid-write leaves
 * the old file or the new one, never a torn one.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultModel } from '../lib/data/bundled';
import { parseNpy, writeNpy } from '../lib/data/npy';
import { loadModel, saveModel } from '../lib/model';
import { writeFileAtomic } from '../lib/util/atomic-write';
import { throwsCode } from './helpers';

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'edgeopt-atomic-'));
}

test('a symlink planted at the old predictable temp name is not written through', () => {
  const dir = tempDir();
  try {
    const victim = path.join(dir, 'victim.txt');
    fs.writeFileSync(victim, 'precious');
    for (const [name, write] of [
      ['m.eom', (f: string) => saveModel(defaultModel(), f)],
      ['x.npy', (f: string) => writeNpy(f, new Float32Array([1, 2, 3]), [3])],
    ] as const) {
      fs.symlinkSync(victim, path.join(dir, `.${name}.${process.pid}.tmp`));
      write(path.join(dir, name));
      assert.is(fs.readFileSync(victim, 'utf8'), 'precious', `${name}: the victim is untouched`);
    }
    assert.is(loadModel(path.join(dir, 'm.eom')).nodes.length, defaultModel().nodes.length);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed write is E_IO naming the file and leaves no temp file behind', () => {
  const dir = tempDir();
  try {
    const target = path.join(dir, 'busy');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'x'); // rename onto a non-empty folder fails
    throwsCode(() => writeFileAtomic(target, new Uint8Array(10)), 'E_IO', /busy/);
    throwsCode(() => writeNpy(target, new Float32Array(4), [4]), 'E_IO', /busy/);
    throwsCode(() => saveModel(defaultModel(), path.join(dir, 'no', 'such', 'folder.eom')), 'E_IO', /folder\.eom/);
    assert.equal(fs.readdirSync(dir), ['busy']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the next write sweeps a dead writer's temp file, never a live writer's", () => {
  const dir = tempDir();
  try {
    const dead = `.f.bin.999999999.0123456789abcdef.tmp`; // above any pid_max
    const live = `.f.bin.${process.ppid}.0123456789abcdef.tmp`;
    for (const t of [dead, live]) fs.writeFileSync(path.join(dir, t), 'partial');
    writeFileAtomic(path.join(dir, 'f.bin'), new Uint8Array([1, 2]));
    assert.equal(fs.readdirSync(dir).sort(), [live, 'f.bin'].sort());
    assert.equal([...fs.readFileSync(path.join(dir, 'f.bin'))], [1, 2]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('kill -9 during writeNpy leaves a whole file every time (old or new)', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'x.npy');
  const count = 1 << 21; // 8 MB a write
  try {
    for (let kill = 0; kill < 6; kill++) {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'fixtures', 'npy-writer.ts'), file, String(count)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((resolve, reject) => {
        child.stdout.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`writer exited with ${code}`)));
      });
      await new Promise((r) => setTimeout(r, 5 + kill * 17));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const npy = parseNpy(fs.readFileSync(file), file);
      assert.is(npy.data.length, count, `kill ${kill}: whole file`);
      const first = npy.data[0];
      assert.ok(
        (npy.data as Float32Array).every((v) => v === first),
        `kill ${kill}: one write's values`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
