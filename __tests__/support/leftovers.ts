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
