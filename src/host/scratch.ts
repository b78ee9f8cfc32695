import { accessSync, chmodSync, constants, mkdtempSync, statSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Deps } from '../deps.js';
import { removeTreeSync } from './privileged.js';

function writableDir(path: string): boolean {
  try {
    accessSync(path, constants.W_OK | constants.X_OK);
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Where large scratch (images, chroots, builder disks) goes: RUNNER_TEMP on GitHub (per job, on the
 * runner's big disk; ubuntu-latest's /tmp is a quota-limited tmpfs from 26.04 on), else TMPDIR, else /tmp.
 */
export function scratchBase(env: NodeJS.ProcessEnv = process.env): string {
  for (const candidate of [env.RUNNER_TEMP, env.TMPDIR, tmpdir(), '/tmp']) {
    if (candidate && writableDir(candidate)) return resolve(candidate);
  }
  return '/tmp';
}

/** Whether every directory from / down to path lets others through (mode o+x): what a sub-uid of ours needs. */
export function traversableByOthers(path: string): boolean {
  for (let dir = resolve(path); ; dir = dirname(dir)) {
    try {
      if ((statSync(dir).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    if (dir === dirname(dir)) return true;
  }
}

/** Bytes available to us on the file system that holds path. */
export function freeBytes(path: string): number {
  const s = statfsSync(path);
  return s.bavail * s.bsize;
}

export interface SpaceNeed {
  /** A directory on the file system that must hold it. */
  dir: string;
  bytes: number;
  what: string;
}

/**
 * What does not fit: needs on one file system are added up. `stat` gives a directory's device and
 * the bytes available there. Pure apart from stat, for tests.
 */
export function spaceShortfalls(
  needs: readonly SpaceNeed[],
  stat: (dir: string) => { dev: number; available: number } = (dir) => ({ dev: statSync(dir).dev, available: freeBytes(dir) }),
): { dir: string; needed: number; available: number; what: string }[] {
  const byDevice = new Map<number, { dir: string; needed: number; available: number; what: string[] }>();
  for (const need of needs) {
    const { dev, available } = stat(need.dir);
    const entry = byDevice.get(dev) ?? { dir: need.dir, needed: 0, available, what: [] };
    entry.needed += need.bytes;
    entry.what.push(need.what);
    byDevice.set(dev, entry);
  }
  return [...byDevice.values()]
    .filter((e) => e.needed > e.available)
    .map((e) => ({ dir: e.dir, needed: e.needed, available: e.available, what: e.what.join(' and ') }));
}

/** A scratch directory registered for cleanup, so that a killed run leaves none behind. */
export function scratchDir(io: { deps: Deps }, name: string): { path: string; release(): void } {
  return makeScratchDir(io.deps, name);
}

/**
 * A scratch directory under scratchBase(), registered for cleanup. `forSubUids`: mode 0755 below a
 * base every sub-uid can reach, for mmdebstrap's unshare mode, whose namespace root (a sub-uid of
 * ours) cannot enter a 0700 directory of ours (measured: "cannot create …/mmdebstrap.XXXX: Permission denied").
 */
export function makeScratchDir(
  deps: Pick<Deps, 'resources' | 'env'>,
  name: string,
  opts: { prefix?: string; forSubUids?: boolean } = {},
): { path: string; release(): void } {
  let base = scratchBase(deps.env);
  if (opts.forSubUids && !traversableByOthers(base)) {
    base = [tmpdir(), '/tmp'].find((b) => writableDir(b) && traversableByOthers(b)) ?? base;
  }
  const path = mkdtempSync(join(base, `${opts.prefix ?? 'dvc'}-${name}-`));
  if (opts.forSubUids) chmodSync(path, 0o755);
  const id = deps.resources.add({ kind: 'dir', name, path });
  return {
    path,
    release() {
      removeTreeSync(path);
      deps.resources.remove(id);
    },
  };
}
