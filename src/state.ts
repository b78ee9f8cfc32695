import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Something started or created that must not outlive the run, whatever way it ends. */
export type Resource =
  | { kind: 'process'; name: string; pid: number; startTime: string }
  | { kind: 'dir'; name: string; path: string }
  | { kind: 'mount'; name: string; path: string };

interface Entry {
  id: number;
  resource: Resource;
}

/** The state key under which main tells post where the resource file is. */
export const STATE_RESOURCE_FILE = 'resource-file';

/** Start time of a process from /proc, so that a reused pid is never killed by mistake. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

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

  /** Releases everything, newest first: processes before the directories they write into. Returns what was done. */
  releaseAll(): string[] {
    const done: string[] = [];
    for (const { id, resource } of [...this.entries].reverse()) {
      const what = release(resource);
      if (what) done.push(what);
      this.remove(id);
    }
    return done;
  }

  private persist(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(this.file, JSON.stringify(this.entries, null, 2));
  }
}

function release(r: Resource): string | undefined {
  switch (r.kind) {
    case 'process': {
      if (processStartTime(r.pid) !== r.startTime) return undefined;
      // Processes are started as group leaders: signal the whole group, then make sure.
      for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
        try {
          process.kill(-r.pid, sig);
        } catch {
          try {
            process.kill(r.pid, sig);
          } catch {
            /* already gone */
          }
        }
        const deadline = Date.now() + 3000;
        while (Date.now() < deadline && processStartTime(r.pid) === r.startTime && !isZombie(r.pid)) sleepSync(50);
        if (processStartTime(r.pid) !== r.startTime || isZombie(r.pid)) break;
      }
      return `stopped ${r.name} (pid ${r.pid})`;
    }
    case 'mount':
      try {
        execFileSync('umount', ['--lazy', r.path], { stdio: 'ignore' });
        return `unmounted ${r.path}`;
      } catch {
        return undefined;
      }
    case 'dir':
      if (!existsSync(r.path)) return undefined;
      rmSync(r.path, { recursive: true, force: true });
      return `removed ${r.name} ${r.path}`;
  }
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) === 'Z';
  } catch {
    return true;
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
