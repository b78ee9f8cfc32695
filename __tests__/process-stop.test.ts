import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HostExec } from '../src/host/exec.js';
import { ConsoleReporter } from '../src/host/reporter.js';
import { ResourceTracker } from '../src/state.js';

/*
 * Processes started through sudo are stopped by every path that stops anything: a timeout, a stop(),
 * and releaseAll() (the end of the run, the post step, `debian-vm-ci cleanup`). As root these run the
 * commands directly; __tests__/integration/process-stop-as-user.test.ts runs this same file as a
 * non-root user with sudo, where a plain kill of sudo's process group left the root command running.
 */
const dir = mkdtempSync(join(tmpdir(), 'dvc-process-stop-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Unique per run: a `sleep` of another test never counts.
const SECONDS = String(3000 + (process.pid % 1000));
function sleepers(): string[] {
  try {
    return execFileSync('pgrep', ['-a', '-f', `^sleep ${SECONDS}$`], { encoding: 'utf8' })
      .trim()
      .split('\n');
  } catch {
    return [];
  }
}
async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}

function exec(name: string): { exec: HostExec; tracker: ResourceTracker } {
  const reporter = new ConsoleReporter(() => undefined);
  const tracker = new ResourceTracker(join(dir, `${name}.json`));
  return { exec: new HostExec(reporter, tracker), tracker };
}

describe(`processes started through sudo (running as ${process.getuid?.() === 0 ? 'root' : 'a non-root user'})`, () => {
  it('are gone after a timeout', async () => {
    const { exec: e, tracker } = exec('timeout');
    await expect(e.run(['sleep', SECONDS], { stage: 't', privileged: true, timeoutSeconds: 2 })).rejects.toThrow(
      /did not finish within 2s/,
    );
    expect(await until(() => sleepers().length === 0)).toBe(true);
    expect(tracker.list()).toEqual([]);
  });

  it('are gone after a cancel (the abort signal of SIGINT/SIGTERM)', async () => {
    const { exec: e } = exec('cancel');
    const controller = new AbortController();
    const run = e.run(['sleep', SECONDS], { stage: 't', privileged: true, signal: controller.signal });
    expect(await until(() => sleepers().length === 1)).toBe(true);
    controller.abort();
    await expect(run).rejects.toThrow(/cancelled/);
    expect(await until(() => sleepers().length === 0)).toBe(true);
  });

  it('are gone after stop() of a long-running process', async () => {
    const { exec: e } = exec('stop');
    const p = e.start('sleeper', ['sleep', SECONDS], { privileged: true });
    expect(await until(() => sleepers().length === 1)).toBe(true);
    await p.stop(2);
    expect(await until(() => sleepers().length === 0)).toBe(true);
  });

  it('are gone after releaseAll(), as the post step and `debian-vm-ci cleanup` run it from the state file', async () => {
    const { exec: e, tracker } = exec('release');
    e.start('sleeper', ['sleep', SECONDS], { privileged: true });
    expect(await until(() => sleepers().length === 1)).toBe(true);
    // A second tracker reads the state file, as the post step does after the main step died.
    const post = new ResourceTracker(tracker.path);
    expect(post.releaseAll()).toEqual([expect.stringMatching(/^stopped sleeper \(pid \d+\)$/)]);
    expect(await until(() => sleepers().length === 0)).toBe(true);
  });
});

describe('input to a program that does not read it', () => {
  it('is no error when the program exits first and closes the pipe (EPIPE)', async () => {
    const { exec: e } = exec('epipe');
    // 4 MiB is more than a pipe holds: the write is still going when `true` has exited.
    const r = await e.run(['true'], { stage: 'test', input: Buffer.alloc(4 * 1024 * 1024) });
    expect(r.exitCode).toBe(0);
  });
});
