import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');

/**
 * Flags every end-to-end run of the suite starts with (a test's own flags come after and win): one virtual CPU for
 * the test VM and the builder VM. The suite's two lanes run their VMs side by side on a 2-core machine, and two
 * 2-vCPU guests under TCG wait on each other's descheduled vCPUs. Measured with two example runs side by side:
 * 268 s with 2 vCPUs, 245 s with 1 (login after 54 s against 41 s). The README main job (bench-smoke.test.ts,
 * as-runner.test.ts) keeps vm-cpus' default.
 */
export const SUITE_FLAGS = ['--vm-cpus', '1'] as const;

/** The bundled CLI running as a child, with its output collected and waitable. */
export class CliRun {
  readonly child: ChildProcess;
  out = '';
  readonly started = performance.now();
  readonly done: Promise<number>;
  private waiters: (() => void)[] = [];

  /** Set when the run hit its deadline and was stopped. */
  timedOut = false;

  /**
   * deadlineSeconds: a run that hangs is stopped (SIGTERM, the CLI's own cleanup; SIGKILL 30 s later)
   * and its test fails on the exit status, long before vitest's 45-minute test timeout would.
   */
  constructor(
    readonly outputDir: string,
    args: string[],
    deadlineSeconds = 20 * 60,
  ) {
    this.child = spawn(
      process.execPath,
      [join(ROOT, 'dist/cli/index.js'), 'run', '--output-dir', outputDir, ...SUITE_FLAGS, ...args],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    for (const s of [this.child.stdout, this.child.stderr]) {
      s?.setEncoding('utf8').on('data', (d: string) => {
        this.out += d;
        for (const w of this.waiters.splice(0)) w();
      });
    }
    const deadline = setTimeout(() => {
      this.timedOut = true;
      this.out += `\n[cli-run] no exit within ${deadlineSeconds}s: SIGTERM\n`;
      this.child.kill('SIGTERM');
      setTimeout(() => this.child.kill('SIGKILL'), 30_000).unref();
    }, deadlineSeconds * 1000);
    deadline.unref();
    this.done = new Promise((r) =>
      this.child.on('close', (code, signal) => {
        clearTimeout(deadline);
        r(code ?? (signal ? 128 : -1));
      }),
    );
  }

  /** Resolves when the output matches; rejects when the run ends first or the deadline passes. */
  async waitFor(pattern: RegExp, seconds: number): Promise<RegExpExecArray> {
    const until = performance.now() + seconds * 1000;
    for (;;) {
      const m = pattern.exec(this.out);
      if (m) return m;
      if (this.child.exitCode !== null) throw new Error(`the run ended before ${pattern}:\n${this.out.slice(-3000)}`);
      if (performance.now() > until) throw new Error(`no ${pattern} within ${seconds}s:\n${this.out.slice(-3000)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 1000);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  result(): Record<string, unknown> {
    const file = join(this.outputDir, 'result.json');
    if (!existsSync(file)) throw new Error(`no result.json:\n${this.out.slice(-3000)}`);
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  }
}

export type StageRecordJson = { name: string; status: string; error?: string; failureKind?: string };

export function stage(result: Record<string, unknown>, name: string): StageRecordJson | undefined {
  return (result.stages as StageRecordJson[]).find((s) => s.name === name);
}
