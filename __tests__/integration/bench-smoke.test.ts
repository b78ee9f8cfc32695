import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostDebianMirror } from '../../src/host/mirror.js';
import { VERDICT_LINES } from '../../bench/watcher.js';
import { ROOT } from '../support/cli-run.js';
import { processesMentioning } from '../support/leftovers.js';

/*
 * `npm run bench` in its smallest form (one run of ours with the developer's cache, one hand-written run, a few
 * watcher samples), so that the benchmark cannot rot: both halves must run to the end and every figure the
 * docs quote must be there. Whether a figure is good is the benchmark's report, not a test's verdict.
 */
const work = mkdtempSync(join(tmpdir(), 'dvc-bench-smoke-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The benchmark's scratch directories (dvc-bench-*), this test's own aside. */
const benchDirs = (): string[] =>
  readdirSync(tmpdir()).filter((n) => n.startsWith('dvc-bench-') && !n.startsWith('dvc-bench-smoke-'));

describe('the benchmark', () => {
  it('runs both halves to the end and writes every figure', () => {
    const before = benchDirs();
    const output = join(work, 'bench.json');
    const r = spawnSync(
      process.execPath,
      [
        'scripts/bench.mjs',
        '--cold-runs',
        '0',
        '--warm-runs',
        '1',
        '--plain-runs',
        '1',
        '--watcher-samples',
        '20',
        '--output',
        output,
      ],
      { cwd: ROOT, encoding: 'utf8', timeout: 40 * 60 * 1000 },
    );
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.status, out.slice(-4000)).toBe(0);
    const text = readFileSync(output, 'utf8');
    const results = JSON.parse(text) as {
      counts: Record<string, number>;
      ours: { warm: Record<string, number | null> };
      theirs: Record<string, number | null>;
      ratio: { warm: Record<string, number | null> };
      validateTarget: { ours: number | null; limit: number | null; met: boolean | null };
      watcherLatencyUs: Record<string, { medianUs: number; samples: number }>;
      failures: string[];
    };
    expect(results.failures).toEqual([]);
    expect(results.counts).toMatchObject({ cold: 0, warm: 1, plain: 1, watcherSamplesPerKind: 20 });
    for (const k of ['lint', 'package', 'install', 'boot', 'validate', 'total']) {
      expect(results.ours.warm[k], `ours ${k}`).toBeGreaterThanOrEqual(0);
      expect(results.theirs[k], `theirs ${k}`).toBeGreaterThanOrEqual(0);
    }
    for (const k of ['package', 'install', 'boot', 'validate']) {
      expect(results.ratio.warm[k], `warm/theirs ${k}`).toBeGreaterThan(0);
    }
    expect(results.theirs.powerOff).toBeGreaterThan(0);
    expect(typeof results.validateTarget.met).toBe('boolean');
    expect(out).toMatch(/validate target: ours [\d.]+ s <= 1\.5 x [\d.]+ \+ power-off [\d.]+ = [\d.]+ s: (met|NOT met)/);
    expect(Object.keys(results.watcherLatencyUs).sort()).toEqual(Object.keys(VERDICT_LINES).sort());
    for (const v of Object.values(results.watcherLatencyUs)) expect(v.samples).toBe(20);
    // The mirror is read from the host at run time and never written or printed.
    const mirror = hostDebianMirror();
    if (mirror) {
      expect(text).not.toContain(new URL(mirror).host);
      expect(out).not.toContain(new URL(mirror).host);
    }
    expect(processesMentioning('dvc-bench-'), 'processes left running').toEqual([]);
    expect(
      benchDirs().filter((d) => !before.includes(d)),
      'scratch directories left behind',
    ).toEqual([]);
  });
});
