/** Small helpers of the benchmark: statistics, timing, child processes, and the mirror kept out of every output. */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { hostDebianMirror } from '../src/host/mirror.js';

/** The Debian mirror from the host's apt sources, read at run time and never written anywhere. */
export const MIRROR = hostDebianMirror() ?? '';
const MIRROR_HOST = MIRROR ? new URL(MIRROR).host : '';

export function redact(text: unknown): string {
  let out = String(text);
  if (MIRROR) out = out.split(MIRROR).join('<mirror>');
  if (MIRROR_HOST) out = out.split(MIRROR_HOST).join('<mirror-host>');
  return out;
}

export const log = (...parts: unknown[]): void => {
  console.error(redact(`[bench ${new Date().toISOString().slice(11, 19)}] ${parts.join(' ')}`));
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const now = (): number => performance.now() / 1000;

export function round(x: number | null | undefined, digits = 1): number | null {
  return x === undefined || x === null || Number.isNaN(x) ? null : Math.round(x * 10 ** digits) / 10 ** digits;
}

export function median(xs: readonly (number | null | undefined)[]): number | null {
  const v = xs.filter((x): x is number => typeof x === 'number').sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)];
}

export const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  typeof a === 'number' && typeof b === 'number' && b > 0 ? round(a / b, 2) : null;

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** stdout and stderr are appended here; dropped without one. */
  logFile?: string;
  /** Reject on a non-zero exit (the default). */
  check?: boolean;
}

/** Runs a command to completion; resolves with its exit code and the seconds it took. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<{ code: number | null; seconds: number }> {
  return new Promise((resolvePromise, reject) => {
    const fd = opts.logFile ? openSync(opts.logFile, 'a') : 'ignore';
    const t0 = now();
    const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', fd, fd] });
    child.on('error', reject);
    child.on('close', (code) => {
      if (typeof fd === 'number') closeSync(fd);
      const seconds = now() - t0;
      if (opts.check !== false && code !== 0)
        reject(new Error(`${argv[0]} exited with ${code} (log: ${opts.logFile ?? 'none'})`));
      else resolvePromise({ code, seconds });
    });
  });
}

/** The last lines of a log file, for a failure message. */
export function tail(file: string, lines = 15): string {
  try {
    return redact(readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n'));
  } catch {
    return '';
  }
}
