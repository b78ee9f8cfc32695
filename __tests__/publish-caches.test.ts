import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Deps } from '../src/context.js';
import { builderImageKey } from '../src/builder/image.js';
import { isoWeek } from '../src/iso-week.js';
import { buildEnvKey } from '../src/package/build-env.js';
import { cacheSpecs, restoreCaches, saveCaches, type CacheName } from '../src/publish/caches.js';
import { InMemoryServices, RecordingReporter } from './support/github-standins/fakes.js';
import { tempDir, testConfig } from './support/github-standins/context.js';

const monday = new Date('2026-11-23T08:00:00Z');

function keys(flags: Record<string, string>, now = monday): Record<CacheName, string> {
  const specs = cacheSpecs(testConfig(flags), { cacheDir: '/cache' }, now);
  return Object.fromEntries(specs.map((s) => [s.name, s.key])) as Record<CacheName, string>;
}

describe('isoWeek', () => {
  it.each([
    ['2026-11-23T00:00:00Z', '2026w48'],
    ['2026-11-29T23:59:59Z', '2026w48'],
    ['2026-11-30T00:00:00Z', '2026w49'],
    // ISO weeks cross the calendar year: 2027-01-01 is a Friday of 2026's week 53, 2024-12-30 is in 2025w01.
    ['2027-01-01T12:00:00Z', '2026w53'],
    ['2024-12-30T12:00:00Z', '2025w01'],
    ['2021-01-03T12:00:00Z', '2020w53'],
    ['2026-11-28T04:00:00Z', '2026w48'],
    ['2026-01-01T00:00:00Z', '2026w01'], // a Thursday: week 1
    ['2024-12-30T00:00:00Z', '2025w01'], // a Monday that belongs to 2025's first week
  ])('%s is %s', (date, week) => {
    expect(isoWeek(new Date(date))).toBe(week);
  });

  it.each([
    '2026-11-28T04:00:00Z',
    '2026-01-01T00:00:00Z',
    '2020-12-31T23:59:59Z',
    '2021-01-03T12:00:00Z',
    '2027-01-04T00:00:00Z',
  ])('on %s the cache keys, the build environment and the builder image name the same week', (date) => {
    const now = new Date(date);
    const week = isoWeek(now);
    const config = testConfig();
    for (const spec of cacheSpecs(config, { cacheDir: '/c' }, now)) expect(spec.key.endsWith(`-${week}`)).toBe(true);
    expect(builderImageKey(config, now)).toContain(`-${week}-`);
    expect(buildEnvKey({ release: 'trixie', architecture: 'amd64', mirror: 'http://mirror.example/debian', now })).toContain(
      `-${week}-`,
    );
  });
});

describe('cacheSpecs', () => {
  const base = keys({});

  it('keys carry readable parts, a shape hash and the ISO week', () => {
    expect(base.apt).toMatch(/^debian-vm-ci-v1-apt-trixie-on-trixie-amd64-[0-9a-f]{16}-2026w48$/);
    expect(base['build-env']).toMatch(/^debian-vm-ci-v1-build-env-trixie-amd64-[0-9a-f]{16}-2026w48$/);
    expect(base.builder).toMatch(/^debian-vm-ci-v1-builder-trixie-amd64-[0-9a-f]{16}-2026w48$/);
  });

  it('paths are below the cache directory', () => {
    const specs = cacheSpecs(testConfig(), { cacheDir: '/cache' }, monday);
    expect(specs.map((s) => s.paths)).toEqual([['/cache/apt'], ['/cache/build-env'], ['/cache/builder']]);
  });

  // Which caches must change key when an input changes; the others must keep theirs (a needless miss costs minutes).
  it.each([
    ['release', { release: 'bookworm' }, ['apt']],
    ['host release (build release follows it)', { 'host-release': 'bookworm' }, ['apt', 'build-env', 'builder']],
    ['build release', { 'build-release': 'sid' }, ['apt', 'build-env']],
    ['architecture', { architecture: 'arm64', firmware: 'uefi' }, ['apt', 'build-env', 'builder']],
    ['packages', { packages: 'curl jq' }, ['apt']],
    ['installer', { installer: 'mmdebstrap' }, ['apt', 'builder']],
    ['firmware', { firmware: 'uefi' }, []],
    ['hostname', { hostname: 'box' }, []],
  ] as const)('a changed %s changes the keys of %j only', (_what, flags, changed) => {
    const other = keys(flags);
    for (const name of ['apt', 'build-env', 'builder'] as const) {
      expect(other[name] !== base[name], name).toBe((changed as readonly string[]).includes(name));
    }
  });

  it('the package list is a set: order does not matter', () => {
    expect(keys({ packages: 'jq curl' }).apt).toBe(keys({ packages: 'curl,jq' }).apt);
  });

  it('restore keys drop only the week, so no restore key matches another shape', () => {
    const [apt, buildEnv, builder] = cacheSpecs(testConfig(), { cacheDir: '/c' }, monday);
    expect(apt.restoreKeys).toEqual([apt.key.replace(/2026w48$/, '')]);
    expect(buildEnv.restoreKeys).toEqual([buildEnv.key.replace(/2026w48$/, '')]);
    expect(builder.restoreKeys).toEqual([builder.key.replace(/2026w48$/, '')]);
    const bookworm = cacheSpecs(testConfig({ release: 'bookworm' }), { cacheDir: '/c' }, monday)[0];
    expect(bookworm.key.startsWith(apt.restoreKeys[0])).toBe(false);
  });

  it('next week has new keys (the builder image is rebuilt weekly too) that the old restore keys still find', () => {
    const nextWeek = keys({}, new Date('2026-12-01T00:00:00Z'));
    expect(nextWeek.apt).not.toBe(base.apt);
    expect(nextWeek.builder).not.toBe(base.builder);
    expect(nextWeek.apt.startsWith(cacheSpecs(testConfig(), { cacheDir: '/cache' }, monday)[0].restoreKeys[0])).toBe(true);
  });
});

function cacheDeps(github: InMemoryServices | undefined): Pick<Deps, 'cacheDir' | 'github' | 'reporter'> & {
  reporter: RecordingReporter;
} {
  return { cacheDir: tempDir('cache'), github, reporter: new RecordingReporter() };
}

describe('restoreCaches and saveCaches', () => {
  const config = testConfig();

  it('do nothing and say so once when there is no cache service', async () => {
    const deps = cacheDeps(undefined);
    expect(await restoreCaches(config, deps)).toEqual([]);
    expect(await saveCaches(config, deps, [])).toEqual([]);
    expect(deps.reporter.lines).toEqual([expect.stringMatching(/caches: off \(no GitHub cache service/)]);
  });

  it('do nothing with cache: false', async () => {
    const services = new InMemoryServices();
    const deps = cacheDeps(services);
    const off = testConfig({ cache: 'false' });
    expect(await restoreCaches(off, deps)).toEqual([]);
    mkdirSync(join(deps.cacheDir, 'apt'));
    writeFileSync(join(deps.cacheDir, 'apt', 'x.deb'), 'x');
    expect(await saveCaches(off, deps, [])).toEqual([]);
    expect(services.saves).toEqual([]);
    expect(deps.reporter.text()).toContain('caches: off (cache: false)');
  });

  it('save what has content, then a later run gets an exact hit and saves nothing again', async () => {
    const services = new InMemoryServices();
    const first = cacheDeps(services);
    const missed = await restoreCaches(config, first);
    expect(missed.map((r) => r.outcome)).toEqual(['miss', 'miss', 'miss']);
    mkdirSync(join(first.cacheDir, 'apt', 'archives'), { recursive: true });
    writeFileSync(join(first.cacheDir, 'apt', 'archives', 'hello.deb'), 'deb bytes');
    const saved = await saveCaches(config, first, missed);
    expect(saved.map((r) => [r.name, r.outcome, r.bytes])).toEqual([
      ['apt', 'saved', 9],
      ['build-env', 'skipped', 0],
      ['builder', 'skipped', 0],
    ]);

    const second = { ...first, reporter: new RecordingReporter() };
    rmSync(join(first.cacheDir, 'apt'), { recursive: true });
    const restored = await restoreCaches(config, second);
    expect(restored[0]).toMatchObject({ name: 'apt', outcome: 'hit', bytes: 9 });
    expect(readFileSync(join(first.cacheDir, 'apt', 'archives', 'hello.deb'), 'utf8')).toBe('deb bytes');
    expect(second.reporter.text()).toMatch(/cache apt: hit debian-vm-ci-v1-apt-/);
    const again = await saveCaches(config, second, restored);
    expect(again[0]).toMatchObject({ outcome: 'skipped', note: 'restored with this exact key' });
    expect(services.saves).toHaveLength(1);
  });

  it('restore an older week as partial and save under this week', async () => {
    const services = new InMemoryServices();
    const deps = cacheDeps(services);
    const [apt] = cacheSpecs(config, deps, monday);
    const lastWeek = apt.restoreKeys[0] + '2026w47';
    mkdirSync(join(deps.cacheDir, 'apt'));
    writeFileSync(join(deps.cacheDir, 'apt', 'old.deb'), 'old');
    await services.saveCache(apt.paths, lastWeek);
    const restored = await restoreCaches(config, deps);
    expect(restored[0]).toMatchObject({ outcome: 'partial', matchedKey: lastWeek });
    const saved = await saveCaches(config, deps, restored);
    expect(saved[0].outcome).toBe('saved');
  });

  it('without restore records, look the key up instead of uploading into an existing entry', async () => {
    const services = new InMemoryServices();
    const deps = cacheDeps(services);
    mkdirSync(join(deps.cacheDir, 'apt'));
    writeFileSync(join(deps.cacheDir, 'apt', 'a.deb'), 'a');
    await saveCaches(config, deps, []);
    const again = await saveCaches(config, deps, []);
    expect(again[0]).toMatchObject({ outcome: 'skipped', note: 'an entry with this key exists' });
  });

  it('turn service errors into warnings, never exceptions', async () => {
    const services = new InMemoryServices();
    services.failCaches = true;
    const deps = cacheDeps(services);
    const restored = await restoreCaches(config, deps);
    expect(restored.map((r) => r.outcome)).toEqual(['failed', 'failed', 'failed']);
    mkdirSync(join(deps.cacheDir, 'builder'));
    writeFileSync(join(deps.cacheDir, 'builder', 'builder.qcow2'), 'img');
    const saved = await saveCaches(config, deps, restored);
    expect(saved.find((r) => r.name === 'builder')?.outcome).toBe('failed');
    expect(deps.reporter.lines.filter((l) => l.startsWith('warning:'))).toHaveLength(4);
  });
});
