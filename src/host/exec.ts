import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { StageError } from '../errors.js';
import type { ResourceTracker } from '../state.js';
import { isAlive, processStartTime, processTree, signalProcesses } from './process-tree.js';
import type { Reporter } from './reporter.js';

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** A stage's log file; every line is redacted before it is written. */
export class StageLog {
  private readonly stream: WriteStream;
  constructor(
    readonly path: string,
    private readonly redact: (s: string) => string,
  ) {
    this.stream = createWriteStream(path, { flags: 'a' });
  }
  write(text: string): void {
    this.stream.write(this.redact(text));
  }
  line(text: string): void {
    this.write(text.endsWith('\n') ? text : text + '\n');
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(resolve));
  }
}

export interface ExecOptions {
  /** Stage name, for errors. */
  stage: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  log?: StageLog;
  /** Called for each complete output line (stdout and stderr), for progress. */
  onLine?: (line: string) => void;
  /** Throw a StageError on a non-zero exit (default true). */
  check?: boolean;
  timeoutSeconds?: number;
  signal?: AbortSignal;
  /** Run through sudo when we are not root. */
  privileged?: boolean;
  /** Keep at most this many bytes of stdout in memory (default 64 MiB). */
  maxBuffer?: number;
}

export interface Exec {
  run(argv: readonly string[], opts: ExecOptions): Promise<ExecResult>;
  /** Starts a long-running process in its own process group, registered for cleanup. */
  start(name: string, argv: readonly string[], opts: StartOptions): TrackedProcess;
}

export interface StartOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  log?: StageLog;
  onLine?: (line: string) => void;
  /** Extra file descriptors or stdio layout; default ignore stdin, pipe stdout and stderr. */
  stdio?: ('ignore' | 'pipe' | 'inherit' | number)[];
  privileged?: boolean;
}

export interface TrackedProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or 128+signal) when the process ends. */
  readonly exited: Promise<number>;
  /** TERM, then KILL after graceSeconds; resolves when the process is gone. */
  stop(graceSeconds?: number): Promise<number>;
}

export function needsSudo(privileged: boolean | undefined): boolean {
  return !!privileged && typeof process.getuid === 'function' && process.getuid() !== 0;
}

/**
 * The command line, through sudo when privileged and not root. sudo is setuid, so glibc drops TMPDIR
 * from its environment before sudo even sees it: it is handed on through env(1).
 */
export function withSudo(argv: readonly string[], privileged: boolean | undefined, env?: NodeJS.ProcessEnv): string[] {
  if (!needsSudo(privileged)) return [...argv];
  return sudoArgv(argv, env ?? process.env);
}

/**
 * What crosses sudo into a root process: locale, time zone, terminal, Debian's build and packaging variables,
 * proxies and our own DVC_ settings (the build script's DVC_LINTIAN), by name; nothing else of the runner's
 * environment (an allow-list, on top of the withheld secrets). TMPDIR goes through env(1): glibc drops it for sudo.
 */
export const SUDO_ENV_ALLOWED =
  /^(DVC_[A-Z0-9_]+|LANG|LANGUAGE|LC_[A-Z_]+|TZ|TERM|NO_COLOR|DEBIAN_FRONTEND|SOURCE_DATE_EPOCH|DEB_[A-Z0-9_]+|DPKG_[A-Z0-9_]+|(http|https|ftp|no)_proxy|(HTTP|HTTPS|FTP|NO)_PROXY)$/;

/** The sudo command line for argv with the allowed variables of env kept (pure, for tests). */
export function sudoArgv(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const keep = Object.keys(childEnvironment(env))
    .filter((name) => SUDO_ENV_ALLOWED.test(name))
    .sort();
  const tmp = env.TMPDIR ? ['env', `TMPDIR=${env.TMPDIR}`] : [];
  return ['sudo', '--non-interactive', ...(keep.length ? [`--preserve-env=${keep.join(',')}`] : []), '--', ...tmp, ...argv];
}

/**
 * Variables no tool we start may see: the runner's tokens (artifact and cache services, OIDC) and the
 * action's inputs, which include the password. The GitHub libraries read them from our own process.env.
 */
const WITHHELD =
  /^(INPUT_.*|ACTIONS_RUNTIME_TOKEN|ACTIONS_ID_TOKEN_REQUEST_(TOKEN|URL)|ACTIONS_RESULTS_URL|ACTIONS_CACHE_URL|GITHUB_TOKEN|DEBIAN_VM_CI_PASSWORD(_FILE)?)$/;

/** The environment of a child process: the given one without the withheld variables. */
export function childEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) if (!WITHHELD.test(name)) clean[name] = value;
  return clean;
}

/**
 * Ends a process we started and everything below it: TERM now, KILL after graceSeconds. A process
 * started through sudo is signalled through `sudo kill` (see process-tree.ts). Returns a function
 * that cancels the KILL once the process is gone.
 */
function terminate(pid: number, privileged: boolean, graceSeconds: number): () => void {
  const tree = processTree(pid);
  const signalAll = (sig: 'SIGTERM' | 'SIGKILL'): void => {
    try {
      process.kill(-pid, sig);
    } catch {
      /* gone, or root-owned members only */
    }
    signalProcesses(
      sig === 'SIGKILL' ? [...tree, ...tree.flatMap((p) => (isAlive(p.pid, p.startTime) ? processTree(p.pid) : []))] : tree,
      sig,
      privileged,
    );
  };
  signalAll('SIGTERM');
  const timer = setTimeout(() => signalAll('SIGKILL'), graceSeconds * 1000);
  timer.unref();
  return () => clearTimeout(timer);
}

function lineSplitter(onLine: (line: string) => void): { push(chunk: string): void; flush(): void } {
  let pending = '';
  return {
    push(chunk) {
      pending += chunk;
      let nl: number;
      while ((nl = pending.search(/\r?\n|\r/)) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + (pending.startsWith('\r\n', nl) ? 2 : 1));
        if (line.trim()) onLine(line);
      }
    },
    flush() {
      if (pending.trim()) onLine(pending);
      pending = '';
    },
  };
}

export function tail(text: string, lines: number): string[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .slice(-lines);
}

export class HostExec implements Exec {
  constructor(
    private readonly reporter: Reporter,
    private readonly resources: ResourceTracker,
  ) {}

  run(argv: readonly string[], opts: ExecOptions): Promise<ExecResult> {
    const full = withSudo(argv, opts.privileged, opts.env);
    const shown = this.reporter.redact(full.join(' '));
    opts.log?.line(`$ ${shown}`);
    const privileged = needsSudo(opts.privileged);
    return new Promise((resolve, reject) => {
      const child = spawn(full[0], full.slice(1), {
        cwd: opts.cwd,
        env: childEnvironment(opts.env ?? process.env),
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        detached: true,
      });
      const startTime = child.pid ? processStartTime(child.pid) : undefined;
      const id =
        child.pid && startTime
          ? this.resources.add({ kind: 'process', name: full[0], pid: child.pid, startTime, privileged })
          : undefined;
      let stdout = '';
      let stderr = '';
      const max = opts.maxBuffer ?? 64 * 1024 * 1024;
      const lines = opts.onLine ? lineSplitter(opts.onLine) : undefined;
      child.stdout?.setEncoding('utf8').on('data', (d: string) => {
        if (stdout.length < max) stdout += d;
        opts.log?.write(d);
        lines?.push(d);
      });
      child.stderr?.setEncoding('utf8').on('data', (d: string) => {
        if (stderr.length < max) stderr += d;
        opts.log?.write(d);
        lines?.push(d);
      });
      if (opts.input !== undefined) {
        // A program that exits without reading its input closes the pipe: that is its business, not an error.
        child.stdin?.on('error', (e: NodeJS.ErrnoException) => {
          if (e.code !== 'EPIPE') reject(e);
        });
        child.stdin?.end(opts.input);
      }
      let timedOut = false;
      let cancelKill: (() => void) | undefined;
      // A grace period lets mmdebstrap and QEMU clean up (unmount, remove their temp dirs) before KILL.
      const kill = (): void => {
        if (child.pid && !cancelKill) cancelKill = terminate(child.pid, privileged, 10);
      };
      const timer = opts.timeoutSeconds
        ? setTimeout(() => {
            timedOut = true;
            kill();
          }, opts.timeoutSeconds * 1000)
        : undefined;
      const onAbort = (): void => kill();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (err) => {
        clearTimeout(timer);
        if (id) this.resources.remove(id);
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        reject(
          new StageError(opts.stage, missing ? `command not found: ${full[0]}` : `could not start ${shown}: ${err.message}`),
        );
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        cancelKill?.();
        opts.signal?.removeEventListener('abort', onAbort);
        if (id) this.resources.remove(id);
        lines?.flush();
        const exitCode = code ?? 128 + (signal ? (osSignals[signal] ?? 0) : 0);
        opts.log?.line(`[exit ${exitCode}${timedOut ? `, killed after ${opts.timeoutSeconds}s` : ''}]`);
        if (timedOut) {
          reject(
            new StageError(
              opts.stage,
              `${shown} did not finish within ${opts.timeoutSeconds}s`,
              'infrastructure',
              tail(stdout + stderr, 20),
            ),
          );
        } else if (opts.signal?.aborted) {
          reject(new StageError(opts.stage, `${shown} was cancelled`));
        } else if (exitCode !== 0 && opts.check !== false) {
          reject(
            new StageError(
              opts.stage,
              `${this.reporter.redact(argv[0])} exited with status ${exitCode}`,
              'infrastructure',
              tail(this.reporter.redact(stderr.trim() ? stderr : stdout), 20),
            ),
          );
        } else {
          resolve({ exitCode, stdout, stderr });
        }
      });
    });
  }

  start(name: string, argv: readonly string[], opts: StartOptions): TrackedProcess {
    const full = withSudo(argv, opts.privileged, opts.env);
    opts.log?.line(`$ ${this.reporter.redact(full.join(' '))} &`);
    const privileged = needsSudo(opts.privileged);
    const child = spawn(full[0], full.slice(1), {
      cwd: opts.cwd,
      env: childEnvironment(opts.env ?? process.env),
      stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const pid = child.pid ?? -1;
    const startTime = pid > 0 ? processStartTime(pid) : undefined;
    const id = startTime ? this.resources.add({ kind: 'process', name, pid, startTime, privileged }) : undefined;
    const lines = opts.onLine ? lineSplitter(opts.onLine) : undefined;
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8').on('data', (d: string) => {
        opts.log?.write(d);
        lines?.push(d);
      });
    }
    const exited = new Promise<number>((resolve) => {
      child.on('error', () => resolve(127));
      child.on('close', (code, signal) => {
        if (id) this.resources.remove(id);
        lines?.flush();
        resolve(code ?? 128 + (signal ? (osSignals[signal] ?? 0) : 0));
      });
    });
    return {
      pid,
      child,
      exited,
      async stop(graceSeconds = 10) {
        const cancel = pid > 0 ? terminate(pid, privileged, graceSeconds) : () => undefined;
        const code = await exited;
        cancel();
        return code;
      },
    };
  }
}

const osSignals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGSEGV: 11, SIGABRT: 6 };

/**
 * Gives what a sudo'd tool wrote (root-owned, the kernel even 0600) back to the user running us, so
 * that the output directory and the cache stay the user's. Nothing to do as root.
 */
export async function chownToCaller(
  exec: Exec,
  paths: readonly string[],
  opts: { stage: string; log?: StageLog },
): Promise<void> {
  if (!needsSudo(true) || typeof process.getuid !== 'function' || typeof process.getgid !== 'function') return;
  await exec.run(['chown', '-R', `${process.getuid()}:${process.getgid()}`, '--', ...paths], { ...opts, privileged: true });
}
