/**
 * A root session in a booted test VM: logs in once on the serial console, mounts the host's share,
 * runs commands with their exit status, stdout and stderr, moves files through the share, gathers the
 * diagnostics and powers the guest off. Every stage that does something inside the VM goes through it.
 *
 * The console carries only the command lines we type and an end marker per command; output goes to
 * files in the share, so a program's output can never be mistaken for the marker or a prompt. The
 * guest is untrusted: what it wrote is read only from regular files (never through a link) up to a size.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shellQuote } from '../host/shell.js';
import type { GuestVm } from './guest.js';
import { GuestFileFollower, inspectGuestFile } from './guest-file.js';

/** The 9p mount tag of the share, and where the session mounts it in the guest. */
export const SHARE_TAG = 'dvc';
export const GUEST_SHARE = '/run/debian-vm-ci';

/**
 * Where a console prompt ends: at the end of what the guest printed so far, or where a late kernel message starts
 * on the same line ("debian login: [   16.792899] powernow_k8: ..." was seen in a real run). The console watcher
 * accepts a login prompt the same way.
 */
const PROMPT_END = String.raw` ?(?:$|(?=\[ *\d+\.\d+\]))`;
/** getty's login prompt. */
export const LOGIN_PROMPT = new RegExp(String.raw`login:${PROMPT_END}`, 'm');
/** login's password prompt, or a new login prompt from a getty that restarted. */
export const PASSWORD_OR_LOGIN_PROMPT = new RegExp(String.raw`(Password|login):${PROMPT_END}`, 'm');
/** login's password prompt. */
export const PASSWORD_PROMPT = new RegExp(String.raw`Password:${PROMPT_END}`, 'm');
/** A root shell's prompt, or login's refusal. */
export const SHELL_PROMPT_OR_REFUSAL = new RegExp(String.raw`(Login incorrect|[#$]${PROMPT_END})`, 'm');

/** Diagnostics gathered inside the guest: file name -> command (run by /bin/sh, output and errors kept). */
export const GUEST_DIAGNOSTICS: readonly [string, string][] = [
  ['os-release.txt', 'cat /etc/os-release'],
  ['uname.txt', 'uname -a'],
  ['dpkg-l.txt', 'dpkg -l'],
  ['systemctl-failed.txt', 'systemctl --failed --no-pager'],
  ['journal.txt', 'journalctl -b --no-pager'],
  ['lsblk.txt', 'lsblk -f || fdisk -l'],
  ['fdisk.txt', 'fdisk -l'],
  ['df.txt', 'df -h'],
  ['mounts.txt', 'cat /proc/mounts'],
  ['ip-addr.txt', 'ip addr'],
  ['cmdline.txt', 'cat /proc/cmdline'],
  [
    'systemd-analyze.txt',
    'command -v systemd-analyze >/dev/null && { systemd-analyze time; systemd-analyze blame --no-pager | head -30; }',
  ],
];

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Something in the guest session did not work: the login, the share, a command's end never came. */
export class GuestSessionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuestSessionError';
  }
}

export interface SessionOptions {
  password: string;
  /** The host directory QEMU shares over 9p with tag SHARE_TAG. */
  shareDir: string;
  signal?: AbortSignal;
  progress?: (message: string) => void;
}

/** The open session of each running VM: the guest stages share one login. */
const SESSIONS = new WeakMap<GuestVm, GuestSession>();

export class GuestSession {
  private seq = 0;
  private closed = false;
  /** A command's end never came (or the login failed midway): what the console shows next is unknown. */
  private broken = false;
  /** What the guest left in the share where the host reads its output, not a regular file: never read. */
  private tampered: string[] = [];

  private constructor(
    private readonly vm: GuestVm,
    private readonly shareDir: string,
    private readonly signal: AbortSignal | undefined,
    private pos: number,
    /** Part of every end marker: a command's output cannot know it in advance. */
    private readonly nonce: string,
  ) {}

  /** Logs in as root on the serial console and mounts the share at GUEST_SHARE. */
  static async open(vm: GuestVm, opts: SessionOptions): Promise<GuestSession> {
    const { signal } = opts;
    let pos = vm.consumed();
    vm.type('\n');
    // The prompt may already be on screen: a fresh one appears after the newline.
    let r = await vm.expect(LOGIN_PROMPT, pos, 60, signal, 'login prompt');
    pos = r.end;
    vm.type('root\n');
    // A getty that restarts in between shows a new login prompt instead: answer that one too.
    r = await vm.expect(PASSWORD_OR_LOGIN_PROMPT, pos, 90, signal, 'password prompt');
    pos = r.end;
    if (r.match[1] === 'login') {
      vm.type('root\n');
      r = await vm.expect(PASSWORD_PROMPT, pos, 90, signal, 'password prompt');
      pos = r.end;
    }
    vm.type(`${opts.password}\n`);
    r = await vm.expect(SHELL_PROMPT_OR_REFUSAL, pos, 120, signal, 'root shell prompt after the password');
    if (r.match[1] === 'Login incorrect') {
      throw new GuestSessionError('logging in as root on the serial console failed: Login incorrect');
    }
    opts.progress?.('logged in on the serial console');
    const session = new GuestSession(vm, opts.shareDir, signal, r.end, randomBytes(6).toString('hex'));
    const mount = `mkdir -p ${GUEST_SHARE} && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ${SHARE_TAG} ${GUEST_SHARE}`;
    const status = await session.line(mount, 120, 'the share mount');
    if (status !== 0) {
      throw new GuestSessionError(
        `the guest could not mount the 9p share (status ${status}): is 9p (virtio) available in its kernel?`,
      );
    }
    return session;
  }

  /**
   * The session of this VM that an earlier stage opened, or a new one. A session that broke (a command that
   * never ended) is not handed on: the console is in an unknown state.
   */
  static async shared(vm: GuestVm, opts: SessionOptions): Promise<GuestSession> {
    const existing = SESSIONS.get(vm);
    if (existing && !existing.closed) {
      if (existing.broken) throw new GuestSessionError('the guest session broke in an earlier stage (a command never ended)');
      return existing;
    }
    const session = await GuestSession.open(vm, opts);
    SESSIONS.set(vm, session);
    return session;
  }

  /** The open, working session of this VM, if a stage opened one. */
  static existing(vm: GuestVm): GuestSession | undefined {
    const s = SESSIONS.get(vm);
    return s && !s.closed && !s.broken ? s : undefined;
  }

  /**
   * Types one command line and waits for its end marker; the typed line's echo cannot match the marker. The
   * marker counts only with its line end: the console arrives in pieces, and "…:7" may be the first half of "…:78".
   */
  private async line(command: string, timeoutSeconds: number, what: string): Promise<number> {
    if (this.closed) throw new GuestSessionError(`the session is closed (${what})`);
    if (this.broken) throw new GuestSessionError(`the session broke earlier (${what})`);
    const id = `${this.nonce}-${++this.seq}`;
    this.vm.type(`${command}; printf 'DVC-%s-%s:%d\\n' END ${id} $?\n`);
    try {
      const r = await this.vm.expect(
        new RegExp(`DVC-END-${id}:(\\d+)\\r?\\n`),
        this.pos,
        timeoutSeconds,
        this.signal,
        `end of ${what}`,
      );
      this.pos = r.end;
      return Number(r.match[1]);
    } catch (e) {
      this.broken = true;
      throw e;
    }
  }

  /**
   * Runs a shell command as root in the guest, in GUEST_SHARE; its stdout and stderr come back through the
   * share. The command travels as a file, so nothing in it needs escaping for the console.
   */
  async run(
    command: string,
    opts: { timeoutSeconds: number; what?: string; onOutput?: (line: string) => void },
  ): Promise<CommandResult> {
    const n = `run-${this.seq + 1}`;
    this.put(`${n}.sh`, { content: `cd ${GUEST_SHARE} || exit 90\n${command}\n` });
    const g = `${GUEST_SHARE}/${n}`;
    const t0 = performance.now();
    // While the command runs, its stdout is followed through the share for the log (complete lines only).
    const follower = opts.onOutput && new GuestFileFollower(join(this.shareDir, `${n}.out`), opts.onOutput);
    const timer = follower && setInterval(() => follower.poll(), 2000);
    let exitCode: number;
    try {
      exitCode = await this.line(`sh ${g}.sh > ${g}.out 2> ${g}.err`, opts.timeoutSeconds, opts.what ?? 'the command');
    } finally {
      if (timer) clearInterval(timer);
      follower?.poll(true);
    }
    return {
      exitCode,
      stdout: this.get(`${n}.out`)?.toString('utf8') ?? '',
      stderr: this.get(`${n}.err`)?.toString('utf8') ?? '',
      seconds: Math.round((performance.now() - t0) / 100) / 10,
    };
  }

  /**
   * Puts a host file (or content) into the share, at its top (the guest may have made anything below);
   * returns its path in the guest. Whatever the guest left under that name is removed first and the file is
   * created exclusively, so a link planted there is never written through.
   */
  put(name: string, from: { file: string } | { content: string | Buffer }, mode = 0o644): string {
    const dest = join(this.shareDir, plainName(name));
    rmSync(dest, { force: true, recursive: true });
    // The mode is set as the file is created: a later chmod by name could follow a link swapped in meanwhile.
    writeFileSync(dest, 'file' in from ? readFileSync(from.file) : from.content, { mode, flag: 'wx' });
    return `${GUEST_SHARE}/${name}`;
  }

  /**
   * A file the guest wrote at the top of the share (a regular file, never through a link), or undefined. Anything
   * else under that name (a link, a FIFO, a directory) is not read and is noted for takeTampered: a guest of ours
   * only ever writes regular files there, so something else was planted.
   */
  get(name: string): Buffer | undefined {
    const f = inspectGuestFile(join(this.shareDir, plainName(name)));
    if ('refused' in f) this.tampered.push(`${name} (${f.refused})`);
    return 'data' in f ? f.data : undefined;
  }

  /** The share's files that get() refused since the last call ("diag-uname.txt (a symbolic link)"). */
  takeTampered(): string[] {
    return this.tampered.splice(0);
  }

  /** Runs GUEST_DIAGNOSTICS in one batch and writes each output into `dir`; returns the seconds it took. */
  async diagnostics(dir: string, timeoutSeconds: number): Promise<number> {
    const script = [...GUEST_DIAGNOSTICS.map(([file, cmd]) => `{ ${cmd}; } > diag-${file} 2>&1`), 'sync'].join('\n');
    const r = await this.run(script, { timeoutSeconds, what: 'the diagnostics' });
    mkdirSync(dir, { recursive: true });
    for (const [file] of GUEST_DIAGNOSTICS) {
      const data = this.get(`diag-${file}`);
      if (data) writeFileSync(join(dir, file), data);
    }
    return r.seconds;
  }

  /** Asks systemd to power off (minimal images may have nothing that handles ACPI's button); QEMU's exit awaited. */
  async powerOff(deadlineSeconds: number): Promise<number> {
    this.closed = true;
    this.vm.type('systemctl poweroff\n');
    return this.vm.shutdown('powered off from the guest session', { graceful: true, deadlineSeconds });
  }
}

/** Share files live at its top under plain names: no directory the guest could have swapped for a link. */
function plainName(name: string): string {
  if (!/^[\w][\w.-]*$/.test(name)) throw new Error(`not a plain file name for the share: ${JSON.stringify(name)}`);
  return name;
}

/** A command line for GuestSession.run from an argv: every word quoted. */
export function commandLine(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}
