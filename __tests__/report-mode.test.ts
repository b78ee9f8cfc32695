import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Deps } from '../src/context.js';
import { EXIT } from '../src/errors.js';
import type { RunResult } from '../src/results.js';
import { aggregateMatrix, renderMatrixMarkdown, runReport, type CellInput } from '../src/report-mode.js';
import { InMemoryServices, RecordingReporter } from './support/github-standins/fakes.js';
import { tempDir, testConfig } from './support/github-standins/context.js';

// result.json files of real CLI runs (install: false); the mirror host was replaced by mirror.example.
const FIXTURES = join(__dirname, 'fixtures', 'report');
const RELEASES = ['bookworm', 'trixie', 'sid', 'forky'] as const;

function fixture(release: (typeof RELEASES)[number]): RunResult {
  return JSON.parse(readFileSync(join(FIXTURES, `${release}.result.json`), 'utf8')) as RunResult;
}

const cells: CellInput[] = RELEASES.map((r) => ({ source: `debian-vm-ci-${r}-reports`, result: fixture(r) }));

describe('aggregateMatrix', () => {
  it('orders cells by Debian release, then firmware and installer', () => {
    const report = aggregateMatrix([...cells].reverse());
    expect(report.cells.map((c) => [c.release, c.firmware, c.installer, c.hostRelease, c.architecture])).toEqual([
      ['bookworm', 'bios', 'grml-debootstrap', 'trixie', 'amd64'],
      ['trixie', 'bios', 'grml-debootstrap', 'trixie', 'amd64'],
      ['forky', 'uefi', 'mmdebstrap', 'trixie', 'amd64'],
      ['sid', 'uefi', 'grml-debootstrap', 'trixie', 'amd64'],
    ]);
  });

  it('fails the matrix when one cell failed, and names its error', () => {
    const report = aggregateMatrix(cells);
    expect(report).toMatchObject({ result: 'failed', passed: 3, failed: 1, tests: 0, failures: 0 });
    expect(report.cells.find((c) => c.release === 'forky')).toMatchObject({
      status: 'failed',
      accel: 'tcg',
      error: expect.stringMatching(/^lint: shellcheck: 1 finding/),
    });
  });

  it('passes when every cell passed', () => {
    expect(aggregateMatrix(cells.slice(0, 3))).toMatchObject({ result: 'passed', passed: 3, failed: 0 });
  });

  it('sums goss tests and failures over the cells', () => {
    // Derived from the real trixie result: these fixtures were recorded with install: false, so without goss.
    const withGoss = (tests: number, failures: number): CellInput => ({
      source: `goss-${tests}`,
      result: { ...fixture('trixie'), goss: { tests, failures, skipped: 0 }, bootSeconds: 41.5 },
    });
    const report = aggregateMatrix([withGoss(12, 0), withGoss(12, 2)]);
    expect(report).toMatchObject({ tests: 24, failures: 2 });
    expect(renderMatrixMarkdown(report)).toContain('goss: **22/24** tests passed');
    expect(renderMatrixMarkdown(report)).toContain('| ✅ passed | 12 | 0 | 41.5 | tcg |');
  });

  it('adds an autopkgtest column only when a cell ran autopkgtest', () => {
    const withDep8: CellInput = {
      source: 'dep8',
      result: { ...fixture('trixie'), autopkgtest: { tests: 5, passed: 2, failed: 1, skipped: 2, flaky: 0 } },
    };
    const markdown = renderMatrixMarkdown(aggregateMatrix([withDep8, cells[0]]));
    expect(markdown).toContain('| boot s | accel | autopkgtest |');
    expect(markdown).toMatch(/\| tcg \| 2\/5 \(1 failed\) \|/);
    expect(renderMatrixMarkdown(aggregateMatrix(cells))).not.toContain('autopkgtest');
  });

  it('counts an unreadable cell as failed', () => {
    const report = aggregateMatrix([...cells.slice(0, 1), { source: 'broken-reports', unreadable: 'no result.json' }]);
    expect(report).toMatchObject({ result: 'failed', failed: 1 });
    expect(renderMatrixMarkdown(report)).toContain('- `broken-reports`: no result.json');
  });

  it('renders one table row per cell', () => {
    const markdown = renderMatrixMarkdown(aggregateMatrix(cells));
    expect(markdown).toContain('## debian-vm-ci matrix: ❌ failed — 3 of 4 cells passed');
    expect(markdown).toContain(
      '| release | firmware | installer | host release | arch | result | tests | failures | boot s | accel |',
    );
    expect(markdown).toContain('| bookworm | bios | grml-debootstrap | trixie | amd64 | ✅ passed | 0 | 0 |  | tcg |');
    expect(markdown).toContain('| forky | uefi | mmdebstrap | trixie | amd64 | ❌ failed | 0 | 0 |  | tcg |');
  });
});

function reportDeps(github: InMemoryServices | undefined): Deps & { reporter: RecordingReporter } {
  return {
    exec: undefined as never,
    resources: undefined as never,
    env: {},
    cacheDir: tempDir('cache'),
    github,
    reporter: new RecordingReporter(),
  };
}

describe('runReport', () => {
  it('downloads the reports artifacts of the run, writes matrix.md and matrix.json and sets the outputs', async () => {
    const services = new InMemoryServices();
    for (const release of RELEASES) {
      const dir = tempDir(`cell-${release}`);
      cpSync(join(FIXTURES, `${release}.result.json`), join(dir, 'result.json'));
      await services.uploadArtifact(
        `debian-vm-ci-${release}-on-trixie-bios-amd64-grml-debootstrap-reports`,
        [join(dir, 'result.json')],
        dir,
        {},
      );
    }
    // Not reports of this prefix: must be left alone.
    const other = tempDir('other');
    writeFileSync(join(other, 'result.json'), '{}');
    await services.uploadArtifact(
      'debian-vm-ci-trixie-on-trixie-bios-amd64-grml-debootstrap-image',
      [join(other, 'result.json')],
      other,
      {},
    );
    await services.uploadArtifact('nightly-trixie-reports', [join(other, 'result.json')], other, {});

    const config = testConfig({ mode: 'report' });
    const deps = reportDeps(services);
    expect(await runReport(config, deps)).toBe(EXIT.test);
    expect(deps.reporter.outputs).toMatchObject({ result: 'failed', tests: '0', failures: '0' });
    const matrix = JSON.parse(readFileSync(join(config.outputDir, 'matrix.json'), 'utf8')) as { cells: unknown[] };
    expect(matrix.cells).toHaveLength(4);
    expect(readFileSync(join(config.outputDir, 'matrix.md'), 'utf8')).toBe(deps.reporter.summary);
    expect(deps.reporter.summary).toContain('3 of 4 cells passed');
  });

  it('exits 0 when every cell passed', async () => {
    const services = new InMemoryServices();
    for (const release of ['bookworm', 'trixie'] as const) {
      const dir = tempDir(`cell-${release}`);
      cpSync(join(FIXTURES, `${release}.result.json`), join(dir, 'result.json'));
      await services.uploadArtifact(`debian-vm-ci-${release}-reports`, [join(dir, 'result.json')], dir, {});
    }
    const deps = reportDeps(services);
    expect(await runReport(testConfig({ mode: 'report' }), deps)).toBe(EXIT.passed);
    expect(deps.reporter.outputs.result).toBe('passed');
  });

  it('exits 3 when the run has no cell artifacts', async () => {
    const deps = reportDeps(new InMemoryServices());
    expect(await runReport(testConfig({ mode: 'report' }), deps)).toBe(EXIT.infrastructure);
    expect(deps.reporter.text()).toMatch(/error: report: no artifact named debian-vm-ci-…-reports in this workflow run/);
  });

  it('outside GitHub reads the result.json files already below output-dir', async () => {
    const out = tempDir('matrix');
    for (const release of RELEASES) {
      mkdirSync(join(out, 'cells', release), { recursive: true });
      cpSync(join(FIXTURES, `${release}.result.json`), join(out, 'cells', release, 'result.json'));
    }
    const deps = reportDeps(undefined);
    expect(await runReport(testConfig({ mode: 'report', 'output-dir': out }), deps)).toBe(EXIT.test);
    expect(readFileSync(join(out, 'matrix.md'), 'utf8')).toContain('| sid | uefi |');
  });
});
