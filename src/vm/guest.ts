import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import type { Deps } from '../deps.js';
import type { StageLog, TrackedProcess } from '../host/exec.js';
import { ConsoleWatcher, MAX_SESSION_CONSOLE, type ConsoleEvent } from './console.js';
import { ppmToPng } from './png.js';
import { qemuArgv, type QemuVmSpec } from './qemu.js';

export type BootOutcome =
  | { kind: 'login'; event: ConsoleEvent; seconds: number }
  | { kind: 'failure'; event: Extract<ConsoleEvent, { type: 'failure' }>; seconds: number }
  | { kind: 'timeout'; seconds: number }
  | { kind: 'exited'; code: number; seconds: number };

/** The guest wrote more than MAX_SESSION_CONSOLE to its console after the login: QEMU was stopped. */
export class ConsoleFloodError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConsoleFloodError';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function connectUnix(path: string, deadlineMs: number, alive: () => boolean): Promise<Socket> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (existsSync(path)) {
      try {
        return await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
      } catch {
        /* not listening yet */
      }
    }
    if (!alive()) throw new Error(`QEMU exited before ${path} appeared`);
    if (Date.now() > until) throw new Error(`${path} did not appear within ${deadlineMs / 1000}s`);
    await sleep(50);
  }
}

/**
 * A running test VM: QEMU with its serial console on a socket that we always drain (a guest
 * stalls on an unread console) and that QEMU mirrors into serial.log; the console stream drives
 * the watcher and the login session.
 */
export class GuestVm {
  readonly watcher = new ConsoleWatcher();
  private buffer = '';
  private waiters: (() => void)[] = [];
  private stopped = false;
  private exitCode: number | undefined;
  /** Where the console stream stood at the login prompt; the flood's diagnosis once the guest flooded it. */
  private loginAt: number | undefined;
  private flood: string | undefined;
  private readonly maxSessionConsole = MAX_SESSION_CONSOLE;
  readonly startedAt = performance.now();

  private constructor(
    readonly spec: QemuVmSpec,
    private readonly proc: TrackedProcess,
    private readonly serial: Socket,
    private readonly log: StageLog,
    private readonly onEvent: (e: ConsoleEvent, seconds: number) => void,
    private readonly onStopped: () => void,
  ) {
    serial.setEncoding('utf8');
    serial.on('data', (d: string) => this.onData(d));
    serial.on('error', () => undefined);
    void proc.exited.then((code) => {
      this.exitCode = code;
      this.wake();
    });
  }

  static async start(
    deps: Deps,
    spec: QemuVmSpec,
    log: StageLog,
    onEvent: (e: ConsoleEvent, seconds: number) => void = () => undefined,
    /** Runs once QEMU is gone after shutdown(), e.g. to remove the VM's scratch dir. */
    onStopped: () => void = () => undefined,
  ): Promise<GuestVm> {
    for (const f of [spec.serialSocket, spec.monitorSocket, spec.pidFile]) rmSync(f, { force: true });
    const argv = qemuArgv(spec);
    let exited = false;
    const proc = deps.exec.start('qemu', argv, { log });
    void proc.exited.then(() => (exited = true));
    // server=on,wait=on: QEMU starts the guest only once we are connected, so no console byte is lost.
    const serial = await connectUnix(spec.serialSocket, 30_000, () => !exited).catch(async (e: unknown) => {
      await proc.stop(2);
      throw e;
    });
    return new GuestVm(spec, proc, serial, log, onEvent, onStopped);
  }

  get seconds(): number {
    return Math.round((performance.now() - this.startedAt) / 100) / 10;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  get exited(): Promise<number> {
    return this.proc.exited;
  }

  private onData(d: string): void {
    this.buffer += d;
    if (this.buffer.length > 1_000_000) {
      const cut = this.buffer.length - 500_000;
      this.totalReceived += cut;
      this.buffer = this.buffer.slice(cut);
    }
    if (this.flood) return;
    for (const e of this.watcher.push(d)) this.onEvent(e, this.seconds);
    if (this.loginAt === undefined && this.watcher.result?.type === 'login') this.loginAt = this.consumed();
    if (this.loginAt !== undefined && this.consumed() - this.loginAt > this.maxSessionConsole) {
      const mib = Math.round(this.maxSessionConsole / 1024 ** 2);
      this.flood = `the guest wrote more than ${mib} MiB to its serial console after the login (something prints in a loop): QEMU was stopped`;
      void this.shutdown(this.flood);
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private nextChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /** Waits for the login prompt, a recognised failure, QEMU's exit or the deadline, whichever comes first. */
  async waitForBoot(timeoutSeconds: number, signal?: AbortSignal): Promise<BootOutcome> {
    const until = performance.now() + timeoutSeconds * 1000;
    for (;;) {
      const r = this.watcher.result;
      if (r?.type === 'login') return { kind: 'login', event: r, seconds: this.seconds };
      if (r?.type === 'failure') return { kind: 'failure', event: r, seconds: this.seconds };
      if (this.exitCode !== undefined) return { kind: 'exited', code: this.exitCode, seconds: this.seconds };
      if (performance.now() >= until || signal?.aborted) return { kind: 'timeout', seconds: this.seconds };
      await this.nextChange(Math.min(1000, until - performance.now()));
    }
  }

  /**
   * Waits until the console output after `from` matches; returns the match and the new position. `what` names
   * the awaited text in errors ("login prompt").
   */
  async expect(
    pattern: RegExp,
    from: number,
    timeoutSeconds: number,
    signal?: AbortSignal,
    what = String(pattern),
  ): Promise<{ match: RegExpExecArray; end: number }> {
    const until = performance.now() + timeoutSeconds * 1000;
    for (;;) {
      const start = Math.max(0, from - this.totalReceived);
      const m = pattern.exec(this.buffer.slice(start));
      if (m) return { match: m, end: this.totalReceived + start + m.index + m[0].length };
      if (this.flood) throw new ConsoleFloodError(this.flood);
      if (this.exitCode !== undefined) throw new Error(`QEMU exited (status ${this.exitCode}) while waiting for ${what}`);
      if (signal?.aborted) throw new Error(`cancelled while waiting for ${what}`);
      if (performance.now() >= until) throw new Error(`no ${what} on the console within ${timeoutSeconds}s`);
      await this.nextChange(Math.min(1000, until - performance.now()));
    }
  }

  private totalReceived = 0;
  /** Position in the console stream (bytes received so far). */
  consumed(): number {
    return this.totalReceived + this.buffer.length;
  }

  /** Types on the serial console. */
  type(text: string): void {
    this.serial.write(text);
  }

  /** Sends a command to QEMU's human monitor and returns its answer. */
  async monitor(command: string, timeoutMs = 10_000): Promise<string> {
    const sock = await connectUnix(this.spec.monitorSocket, timeoutMs, () => this.running);
    return new Promise((resolve, reject) => {
      let out = '';
      let sent = false;
      const t = setTimeout(() => {
        sock.destroy();
        reject(new Error(`monitor command '${command}' got no answer`));
      }, timeoutMs);
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        out += d;
        if (!sent && out.includes('(qemu)')) {
          sent = true;
          out = '';
          sock.write(command + '\n');
        } else if (sent && /\(qemu\) ?$/.test(out)) {
          clearTimeout(t);
          sock.end();
          resolve(out);
        }
      });
      sock.on('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  /** A PNG of the VGA console: what went only to tty0 (initramfs and emergency shells with console=tty0 last). */
  async screenshot(png: string): Promise<boolean> {
    if (!this.running) return false;
    const ppm = `${png}.ppm`;
    try {
      await this.monitor(`screendump ${ppm}`);
      for (let i = 0; i < 20 && !existsSync(ppm); i++) await sleep(100);
      writeFileSync(png, ppmToPng(readFileSync(ppm)));
      return true;
    } catch (e) {
      this.log.line(`# screenshot failed: ${String(e)}`);
      return false;
    } finally {
      rmSync(ppm, { force: true });
    }
  }

  /**
   * Stops the VM: an ACPI power-off request when `graceful`, QEMU's exit awaited up to the deadline,
   * then TERM and KILL. Safe to call more than once.
   */
  async shutdown(reason: string, opts: { graceful?: boolean; deadlineSeconds?: number } = {}): Promise<number> {
    if (this.stopped) return this.proc.exited;
    this.stopped = true;
    this.log.line(`# stopping the VM: ${reason}`);
    if (opts.graceful && this.running) {
      await this.monitor('system_powerdown').catch(() => undefined);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), (opts.deadlineSeconds ?? 60) * 1000);
      });
      const r = await Promise.race([this.proc.exited, deadline]);
      // A pending timer would keep the process alive after the run: clear it as soon as QEMU is gone.
      clearTimeout(timer);
      if (r === 'timeout') this.log.line(`# the guest did not power off within ${opts.deadlineSeconds ?? 60}s: killing QEMU`);
    }
    const code = this.running ? await this.proc.stop(5) : await this.proc.exited;
    this.serial.destroy();
    this.onStopped();
    return code;
  }

  /** For tests and diagnostics: kill QEMU from outside. */
  get pid(): number {
    return this.proc.pid;
  }
}
