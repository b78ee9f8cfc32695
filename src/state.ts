import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { runPrivilegedSync } from './host/privileged.js';
import { processStartTime, stopTreeSync } from './host/process-tree.js';

export { processStartTime };

/** Something started or created that must not outlive the run, whatever way it ends. */
export type Resource =
  /** privileged: started through sudo, so only `sudo kill` can stop it. */
  | { kind: 'process'; name: string; pid: number; startTime: string; privileged?: boolean }
  | { kind: 'dir'; name: string; path: string }
  | { kind: 'mount'; name: string; path: string }
  /** A file we installed outside our directories (the KVM udev rule); privileged: removed through sudo. */
  | { kind: 'file'; name: string; path: string; privileged?: boolean };

interface Entry {
  id: number;
  resource: Resource;
}

/** The state key under which main tells post where the resource file is. */
export const STATE_RESOURCE_FILE = 'resource-file';

/**
 * Registry of live resources, mirrored to a JSON file after every change so that the
 * post step (or a later CLI invocation) can release what a killed main process left.
 */
export class ResourceTracker {
  private entries: Entry[] = [];
  private nextId = 1;

  constructor(private readonly file: string) {
    if (existsSync(file)) {
      this.entries = JSON.parse(readFileSync(file, 'utf8')) as Entry[];
      this.nextId = Math.max(0, ...this.entries.map((e) => e.id)) + 1;
    }
  }

  get path(): string {
    return this.file;
  }

  list(): readonly Resource[] {
    return this.entries.map((e) => e.resource);
  }

  add(resource: Resource): number {
    const id = this.nextId++;
    this.entries.push({ id, resource });
    this.persist();
    return id;
  }

  remove(id: number): void {
    this.entries = this.entries.filter((e) => e.id !== id);
    this.persist();
  }

  /** Releases everything, newest first: processes before the directories they write into. Returns what was done; never throws. */
  releaseAll(): string[] {
    const done: string[] = [];
    for (const { id, resource } of [...this.entries].reverse()) {
      let what: string | undefined;
      try {
        what = release(resource);
      } catch (e) {
        what = `could not release ${resource.name}: ${e instanceof Error ? e.message : String(e)}`;
      }
      if (what) done.push(what);
      this.remove(id);
    }
    return done;
  }

  /** Deletes the state file once nothing is left in it (a finished run leaves no file behind). */
  dispose(): void {
    if (this.entries.length === 0) rmSync(this.file, { force: true });
  }

  private persist(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(this.file, JSON.stringify(this.entries, null, 2));
  }
}

function release(r: Resource): string | undefined {
  switch (r.kind) {
    case 'process':
      // Started as group leaders; through sudo, the root processes below are signalled with sudo kill.
      return stopTreeSync(r.pid, r.startTime, !!r.privileged) ? `stopped ${r.name} (pid ${r.pid})` : undefined;
    case 'file': {
      if (!existsSync(r.path)) return undefined;
      try {
        rmSync(r.path, { force: true });
      } catch {
        if (!(r.privileged && runPrivilegedSync(['rm', '-f', '--', r.path]))) return `could not remove ${r.name} ${r.path}`;
      }
      return `removed ${r.name} ${r.path}`;
    }
    case 'mount':
      return runPrivilegedSync(['umount', '--lazy', r.path]) ? `unmounted ${r.path}` : undefined;
    case 'dir': {
      if (!existsSync(r.path)) return undefined;
      // A killed mmdebstrap leaves its chroot's /proc, /sys and /dev mounted: unmount those first.
      const unmounted = mountsBelow(r.path).filter((m) => runPrivilegedSync(['umount', '--lazy', m]));
      try {
        rmSync(r.path, { recursive: true, force: true });
      } catch {
        // Root-owned trees made through sudo.
        if (!runPrivilegedSync(['rm', '-rf', '--one-file-system', r.path])) return `could not remove ${r.name} ${r.path}`;
      }
      return `removed ${r.name} ${r.path}${unmounted.length ? ` (after unmounting ${unmounted.length} mounts below it)` : ''}`;
    }
  }
}

/** Mount points at or below dir, deepest first (from /proc/mounts, with its octal escapes decoded). */
export function mountsBelow(dir: string): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/mounts', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => (line.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}
