import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';

/** Processes whose command line mentions `needle` (QEMU, UML, slirp of a test run). */
export function processesMentioning(needle: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(needle) && !cmd.includes('vitest')) found.push(`${pid}: ${cmd.slice(0, 200)}`);
    } catch {
      /* exited */
    }
  }
  return found;
}

/** The run's scratch directories (dvc-*) in the temp dir and /dev/shm. */
export function scratchDirs(): string[] {
  const list = (dir: string): string[] => {
    try {
      return readdirSync(dir)
        .filter((n) => /^dvc-(vm|install|uml|builder)-/.test(n))
        .map((n) => `${dir}/${n}`);
    } catch {
      return [];
    }
  };
  return [...list(tmpdir()), ...list('/dev/shm')];
}

/**
 * The scratch directories that appeared since `before` and that no running process names: what a run left
 * behind. The integration lanes run side by side (vitest.config.ts) with a temp dir each, but share /dev/shm,
 * where a builder of the other lane keeps its disks: its QEMU names them, and it makes its directory a moment
 * before QEMU starts and removes it a moment after QEMU exits, so a directory seen once is looked at again.
 * A run's own leftover process is caught by processesMentioning(outputDir).
 */
export function newScratchDirs(before: readonly string[]): string[] {
  const fresh = (): string[] => scratchDirs().filter((d) => !before.includes(d) && processesMentioning(d).length === 0);
  const first = fresh();
  if (first.length === 0) return first;
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5000);
  return fresh().filter((d) => first.includes(d));
}

/** Files under dir (recursively) whose content contains the secret. */
export function filesContaining(dir: string, secret: string): string[] {
  const hits: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && !/\.(img|qcow2)$/.test(e.name) && !/vmlinuz|initrd/.test(e.name)) {
        if (readFileSync(p).includes(secret)) hits.push(p);
      }
    }
  };
  walk(dir);
  return hits;
}

/** Names of the pipeline's scratch directories (src/host/scratch.ts, the package and goss stages) and mmdebstrap's own. */
export const SCRATCH_NAME = /^(dvc-|debian-vm-ci-(package|goss)-|mmdebstrap\.)/;

/** Mount points at or below any of the prefixes (/proc/mounts writes spaces and other odd bytes as octal escapes). */
export function mountsBelow(prefixes: readonly string[]): string[] {
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => unescape(line.split(' ')[1] ?? ''))
    .filter((point) => prefixes.some((p) => point === p || point.startsWith(`${p.replace(/\/+$/, '')}/`)));
}

/**
 * Processes left of one user's run: any process of that uid, any process started through sudo by that
 * user (SUDO_USER in its environment: QEMU or mmdebstrap run as root live under another uid; only root
 * can read that), and any process naming one of the paths on its command line.
 */
export function processesOf(user: { uid: number; name: string }, paths: readonly string[]): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      if (cmd.includes('vitest')) continue;
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      let sudoUser = false;
      try {
        sudoUser = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`SUDO_USER=${user.name}`);
      } catch {
        /* another user's process and we are not root */
      }
      const why = uid === user.uid ? `uid ${uid}` : sudoUser ? `sudo by ${user.name}` : paths.some((p) => cmd.includes(p));
      if (why) found.push(`${pid} (${why === true ? 'names a run path' : why}): ${cmd.slice(0, 200)}`);
    } catch {
      /* exited */
    }
  }
  return found;
}
