import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Deps } from '../deps.js';
import { formatBytes } from '../input-values.js';
import { isoWeek } from '../iso-week.js';

export type CacheName = 'apt' | 'build-env' | 'builder';

export interface CacheSpec {
  name: CacheName;
  paths: string[];
  key: string;
  /** Prefixes tried, newest entry first, when key itself misses; never one of a different shape. */
  restoreKeys: string[];
}

export type CacheOutcome =
  /** restore: the exact key; nothing new to save unless the key changes. */
  | 'hit'
  /** restore: an older entry of the same shape (an earlier ISO week). */
  | 'partial'
  | 'miss'
  | 'saved'
  | 'skipped'
  | 'failed';

export interface CacheRecord {
  name: CacheName;
  phase: 'restore' | 'save';
  key: string;
  outcome: CacheOutcome;
  matchedKey?: string;
  /** Bytes on disk of the cached directory after the restore or at the save. */
  bytes: number;
  seconds: number;
  note?: string;
}

type CacheConfig = Pick<Config, 'release' | 'hostRelease' | 'buildRelease' | 'architecture' | 'installer' | 'packages' | 'cache'>;
type CacheDeps = Pick<Deps, 'cacheDir' | 'github' | 'reporter'>;

/** Bump when the layout of a cached directory changes, so old entries are never restored into the new layout. */
const CACHE_SCHEMA = 'v1';
const KEY_PREFIX = `debian-vm-ci-${CACHE_SCHEMA}`;

function shapeHash(shape: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex').slice(0, 16);
}

/**
 * The caches and their keys. Each key carries the readable parts a person looks for in the cache list
 * plus a hash of every input that shapes the directory's content, so a changed release, host release,
 * architecture or package list can never restore a wrong one; restore keys only drop the ISO week.
 */
export function cacheSpecs(config: CacheConfig, deps: Pick<Deps, 'cacheDir'>, now: Date = new Date()): CacheSpec[] {
  const week = isoWeek(now);
  const weekly = (name: CacheName, readable: string, shape: Record<string, unknown>): CacheSpec => {
    const stem = `${KEY_PREFIX}-${name}-${readable}-${shapeHash({ name, ...shape })}-`;
    return { name, paths: [join(deps.cacheDir, name)], key: stem + week, restoreKeys: [stem] };
  };
  const builderShape = { hostRelease: config.hostRelease, architecture: config.architecture, installer: config.installer };
  return [
    // The apt proxy keeps what the installer, the package build and the extra packages fetched.
    weekly('apt', `${config.release}-on-${config.hostRelease}-${config.architecture}`, {
      release: config.release,
      hostRelease: config.hostRelease,
      buildRelease: config.buildRelease,
      architecture: config.architecture,
      installer: config.installer,
      packages: [...config.packages].sort(),
    }),
    // Build environments are bootstrapped from the build release alone.
    weekly('build-env', `${config.buildRelease}-${config.architecture}`, {
      buildRelease: config.buildRelease,
      architecture: config.architecture,
    }),
    // The builder image's file name carries the ISO week (src/builder/image.ts): so does its key.
    weekly('builder', `${config.hostRelease}-${config.architecture}`, builderShape),
  ];
}

/** Bytes of regular files below path (0 when it does not exist); symlinks are counted as links. */
export function directoryBytes(path: string): number {
  if (!existsSync(path)) return 0;
  const stat = lstatSync(path);
  if (!stat.isDirectory()) return stat.isFile() ? stat.size : 0;
  let total = 0;
  for (const entry of readdirSync(path)) total += directoryBytes(join(path, entry));
  return total;
}

function hasContent(path: string): boolean {
  return existsSync(path) && (!lstatSync(path).isDirectory() || readdirSync(path).length > 0);
}

/** Why caching is off for this run, or undefined when the GitHub cache service is there to use. */
export function cachesOffReason(config: Pick<Config, 'cache'>, deps: Pick<Deps, 'github'>): string | undefined {
  if (!config.cache) return 'cache: false';
  if (!deps.github) return 'no GitHub cache service outside GitHub Actions';
  if (!deps.github.cacheAvailable) return 'the runner offers no cache service';
  return undefined;
}

function secondsSince(started: number): number {
  return Math.round((performance.now() - started) / 100) / 10;
}

function describe(record: CacheRecord): string {
  const size = record.bytes ? ` (${formatBytes(record.bytes)}, ${record.seconds}s)` : ` (${record.seconds}s)`;
  switch (record.outcome) {
    case 'hit':
      return `cache ${record.name}: hit ${record.key}${size}`;
    case 'partial':
      return `cache ${record.name}: restored the older ${record.matchedKey}${size}; this run saves ${record.key}`;
    case 'miss':
      return `cache ${record.name}: miss for ${record.key}`;
    case 'saved':
      return `cache ${record.name}: saved ${record.key}${size}`;
    default:
      return `cache ${record.name}: ${record.outcome} ${record.key}${record.note ? `: ${record.note}` : ''}`;
  }
}

/** Restores every cache before the first stage; a service error is a warning and a miss. */
export async function restoreCaches(config: CacheConfig, deps: CacheDeps): Promise<CacheRecord[]> {
  const off = cachesOffReason(config, deps);
  if (off || !deps.github) {
    deps.reporter.info(`caches: off (${off}); ${deps.cacheDir} is used as it is`);
    return [];
  }
  const records: CacheRecord[] = [];
  for (const spec of cacheSpecs(config, deps)) {
    const started = performance.now();
    let record: CacheRecord;
    try {
      const matchedKey = await deps.github.restoreCache(spec.paths, spec.key, spec.restoreKeys);
      record = {
        name: spec.name,
        phase: 'restore',
        key: spec.key,
        outcome: matchedKey === undefined ? 'miss' : matchedKey === spec.key ? 'hit' : 'partial',
        matchedKey,
        bytes: matchedKey === undefined ? 0 : directoryBytes(spec.paths[0]),
        seconds: secondsSince(started),
      };
      deps.reporter.info(describe(record));
    } catch (error) {
      const note = error instanceof Error ? error.message : String(error);
      record = {
        name: spec.name,
        phase: 'restore',
        key: spec.key,
        outcome: 'failed',
        bytes: 0,
        seconds: secondsSince(started),
        note,
      };
      deps.reporter.warning(`cache ${spec.name}: could not restore ${spec.key}: ${note}`);
    }
    records.push(record);
  }
  return records;
}

/**
 * Saves every cache that has content and was not an exact hit (cache entries are immutable, so saving
 * under a key that exists only costs an upload the service refuses). Runs after failed runs too: what
 * was downloaded before the failure is still worth keeping. A service error is a warning, never a failure.
 */
export async function saveCaches(config: CacheConfig, deps: CacheDeps, restored: readonly CacheRecord[]): Promise<CacheRecord[]> {
  if (cachesOffReason(config, deps) || !deps.github) return [];
  const records: CacheRecord[] = [];
  for (const spec of cacheSpecs(config, deps)) {
    const started = performance.now();
    const skipped = (note: string): CacheRecord => ({
      name: spec.name,
      phase: 'save',
      key: spec.key,
      outcome: 'skipped',
      bytes: 0,
      seconds: secondsSince(started),
      note,
    });
    let record: CacheRecord;
    try {
      const restore = restored.find((r) => r.name === spec.name);
      if (restore?.outcome === 'hit' && restore.key === spec.key) {
        record = skipped('restored with this exact key');
      } else if (!hasContent(spec.paths[0])) {
        record = skipped('nothing to save');
      } else if (!restore && (await deps.github.cacheExists(spec.paths, spec.key))) {
        record = skipped('an entry with this key exists');
      } else {
        const bytes = directoryBytes(spec.paths[0]);
        const id = await deps.github.saveCache(spec.paths, spec.key);
        record =
          id >= 0
            ? { name: spec.name, phase: 'save', key: spec.key, outcome: 'saved', bytes, seconds: secondsSince(started) }
            : {
                ...skipped('the cache service did not take it (another job may be saving the same key; see above)'),
                outcome: 'failed',
              };
      }
      deps.reporter.info(describe(record));
    } catch (error) {
      const note = error instanceof Error ? error.message : String(error);
      record = { ...skipped(note), outcome: 'failed' };
      deps.reporter.warning(`cache ${spec.name}: could not save ${spec.key}: ${note}`);
    }
    records.push(record);
  }
  return records;
}
