import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/*
 * Stopping what we started, including what we started through sudo. A non-root process may signal
 * sudo itself (its real uid is ours), but not the root processes sudo runs: with Debian's and
 * Ubuntu's `Defaults use_pty` the command even runs in a session of its own, outside our process
 * group. Measured as the user `runner`: SIGKILL to a `sudo mmdebstrap` process group killed sudo
 * and left mmdebstrap running as root. So a process started through sudo is stopped by walking its
 * tree in /proc and signalling every member with `sudo kill`.
 */

interface ProcStat {
  pid: number;
  ppid: number;
  /** Clock ticks after boot: tells a reused pid from the process we mean. */
  startTime: string;
  state: string;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted after its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, state: fields[0], ppid: Number(fields[1]), startTime: fields[19] };
  } catch {
    return undefined;
  }
}

/** Start time of a process from /proc, so that a reused pid is never killed by mistake. */
export function processStartTime(pid: number): string | undefined {
  return readStat(pid)?.startTime;
}

/** True while the process exists and is not a zombie. */
export function isAlive(pid: number, startTime?: string): boolean {
  const s = readStat(pid);
  return !!s && s.state !== 'Z' && (startTime === undefined || s.startTime === startTime);
}

export function runningAsRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** The process and all its descendants (parents before children), with their start times. */
export function processTree(root: number): { pid: number; startTime: string }[] {
  const self = readStat(root);
  if (!self) return [];
  const children = new Map<number, ProcStat[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(s);
    children.set(s.ppid, list);
  }
  const tree: ProcStat[] = [self];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i].pid) ?? []));
  return tree.map(({ pid, startTime }) => ({ pid, startTime }));
}

/**
 * Sends a signal to every process of the list that is still the one we mean; through `sudo kill` for
 * processes that were started through sudo when we are not root. Never throws.
 */
export function signalProcesses(
  procs: readonly { pid: number; startTime: string }[],
  signal: 'SIGTERM' | 'SIGKILL',
  privileged: boolean,
): void {
  const alive = procs.filter((p) => isAlive(p.pid, p.startTime)).map((p) => p.pid);
  if (alive.length === 0) return;
  if (privileged && !runningAsRoot()) {
    try {
      execFileSync('sudo', ['--non-interactive', 'kill', '-s', signal.slice(3), '--', ...alive.map(String)], {
        stdio: 'ignore',
        timeout: 30_000,
      });
    } catch {
      /* some were gone already */
    }
    return;
  }
  for (const pid of alive) {
    try {
      process.kill(pid, signal);
    } catch {
      /* gone */
    }
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * TERM to the process, its process group and its whole tree, then KILL to whatever is left after
 * graceMs. Synchronous: for the post step and signal handlers, where nothing else runs anyway.
 * Returns true when the process was running.
 */
export function stopTreeSync(pid: number, startTime: string, privileged: boolean, graceMs = 3000): boolean {
  if (!isAlive(pid, startTime)) return false;
  const tree = processTree(pid);
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    /* not a group leader, or not ours to signal */
  }
  signalProcesses(tree, 'SIGTERM', privileged);
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && tree.some((p) => isAlive(p.pid, p.startTime))) sleepSync(50);
  // Children forked during the grace period belong to the tree too.
  const left = [...tree, ...tree.flatMap((p) => (isAlive(p.pid, p.startTime) ? processTree(p.pid) : []))];
  if (left.some((p) => isAlive(p.pid, p.startTime))) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* see above */
    }
    signalProcesses(left, 'SIGKILL', privileged);
    const until = Date.now() + 5000;
    while (Date.now() < until && left.some((p) => isAlive(p.pid, p.startTime))) sleepSync(50);
  }
  return true;
}
