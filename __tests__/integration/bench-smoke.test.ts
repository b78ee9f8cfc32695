import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostDebianMirror } from '../../src/host/mirror.js';
import { VERDICT_LINES } from '../../bench/watcher.js';
import { ROOT } from '../support/cli-run.js';
import { filesContaining, processesMentioning } from '../support/leftovers.js';
import { PIPELINE_PASSWORD } from '../support/pipeline-run.js';

/*
 * `npm run bench` in its smallest form (one run of ours with the developer's cache, one hand-written run, a few
 * watcher samples), so that the benchmark cannot rot: both halves must run to the end and every figure the
 * docs quote must be there. Whether a figure is good is the benchmark's report, not a test's verdict.
 * Its run of ours is the README main job as root (bench/ours.ts MAIN_JOB_FLAGS): the second test reads the reports
 * of that run, kept with --keep-output, rather than running the same job once more (four minutes under TCG).
 */
const work = mkdtempSync(join(tmpdir(), 'dvc-bench-smoke-'));
const kept = join(work, 'warm-run');
type Stage = { name: string; status: string; summary?: string };
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
        '--keep-output',
        kept,
      ],
      // The password from the environment (the CLI's DEBIAN_VM_CI_PASSWORD), so that the test can look for it.
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 40 * 60 * 1000,
        env: { ...process.env, DEBIAN_VM_CI_PASSWORD: PIPELINE_PASSWORD },
      },
    );
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.status, out.slice(-4000)).toBe(0);
    expect(out).not.toContain(PIPELINE_PASSWORD);
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

  it('its run of ours is the README main job on the example: lint, package, mmdebstrap image with the package, boot, goss', () => {
    expect(existsSync(join(kept, 'result.json')), 'the first test kept the run').toBe(true);
    const result = JSON.parse(readFileSync(join(kept, 'result.json'), 'utf8')) as Record<string, unknown>;
    expect(result.status).toBe('passed');
    expect((result.stages as Stage[]).map((s) => `${s.name}:${s.status}`)).toEqual([
      'accel:passed',
      'lint:passed',
      'package:passed',
      'install:passed',
      'boot:passed',
      'validate:passed',
      'lifecycle:skipped',
      'autopkgtest:skipped',
      'upgrade:skipped',
      'publish:passed',
    ]);
    // The example has no DEP-8 tests: autopkgtest: auto says why it does not apply, and costs nothing.
    expect((result.stages as Stage[]).find((s) => s.name === 'autopkgtest')?.summary).toBe(
      'the project has no debian/tests/control',
    );
    const goss = result.goss as { tests: number; failures: number };
    expect(goss.tests).toBeGreaterThanOrEqual(10);
    expect(goss.failures).toBe(0);
    expect(result.bootSeconds).toBeGreaterThan(0);
    for (const f of [
      'goss/goss.json',
      'goss/goss.junit.xml',
      'goss/goss.tap',
      'goss/goss.md',
      'serial.log',
      'lint/shellcheck.sarif',
      'summary.md',
    ]) {
      expect(existsSync(join(kept, f)), f).toBe(true);
    }
    expect(existsSync(join(kept, '.work')), 'the working files under the output dir').toBe(false);
    // diagnostics: failure (the default) gathers nothing after a run that passed; goss checked the built package.
    expect(existsSync(join(kept, 'diagnostics')), 'diagnostics/ after a passing run').toBe(false);
    const gossResults = (
      JSON.parse(readFileSync(join(kept, 'goss/goss.json'), 'utf8')) as {
        results: { 'resource-type': string; 'resource-id': string; successful: boolean }[];
      }
    ).results;
    expect(gossResults.find((r) => r['resource-type'] === 'Package' && r['resource-id'] === 'hello-dvc')?.successful).toBe(true);
    expect(readFileSync(join(kept, 'serial.log'), 'utf8')).toMatch(/login: /);
    // The root password (from DEBIAN_VM_CI_PASSWORD) is in no report.
    expect(filesContaining(kept, PIPELINE_PASSWORD)).toEqual([]);
    // The build's apt proxy and dpkg shortcuts are not left in the installed system.
    const image = join(kept, 'image', 'qemu.img');
    expect(statSync(image).size).toBe(3 * 1024 ** 3); // image-size's default, 3G
    const aptConf = spawnSync('debugfs', ['-R', 'ls /etc/apt/apt.conf.d', image], { encoding: 'utf8' }).stdout;
    expect(aptConf).toContain('70debconf');
    expect(aptConf).not.toContain('99mmdebstrap');
    expect(spawnSync('debugfs', ['-R', 'ls /etc/dpkg/dpkg.cfg.d', image], { encoding: 'utf8' }).stdout).not.toContain(
      '99mmdebstrap',
    );
  });
});
