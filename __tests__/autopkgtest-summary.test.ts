import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  autopkgtestExit,
  autopkgtestToJUnit,
  autopkgtestToMarkdown,
  countOutcomes,
  parseAutopkgtestSummary,
} from '../src/autopkgtest/summary.js';

// The summary file of a real run: autopkgtest 5.28, null server in a booted bookworm guest, the DEP-8 fixture.
const REAL = readFileSync(join(import.meta.dirname, 'fixtures/autopkgtest/summary-5.28-null.txt'), 'utf8');

describe("autopkgtest's summary file", () => {
  it('gives one verdict per test; the needs-reboot skip autopkgtest writes twice counts once', () => {
    const { tests, notes } = parseAutopkgtestSummary(REAL);
    expect(tests).toEqual([
      { name: 'reboots', outcome: 'skipped', detail: 'Test restriction "needs-reboot" requires testbed capability "reboot"' },
      { name: 'passes', outcome: 'passed', detail: '' },
      { name: 'fails', outcome: 'failed', detail: 'non-zero exit status 1' },
      { name: 'skips', outcome: 'skipped', detail: 'exit status 77 and marked as skippable' },
      { name: 'machine', outcome: 'passed', detail: '' },
    ]);
    expect(notes).toEqual([]);
    expect(countOutcomes(tests)).toEqual({ tests: 5, passed: 2, failed: 1, skipped: 2, flaky: 0 });
  });

  it('knows flaky, superficial and broken tests, and keeps blame/badpkg lines as notes', () => {
    const { tests, notes } = parseAutopkgtestSummary(
      [
        'smoke                PASS (superficial)',
        'racy                 FLAKY non-zero exit status 1',
        'odd                  BROKEN the test could not be run',
        '*                    SKIP no tests in this package',
        'blame: arg:dvc-dep8_1.0_all.deb',
        'badpkg: Test dependencies are unsatisfiable.',
        '',
      ].join('\n'),
    );
    expect(tests.map((t) => [t.name, t.outcome, t.detail])).toEqual([
      ['smoke', 'passed', 'superficial'],
      ['racy', 'flaky', 'non-zero exit status 1'],
      ['odd', 'failed', 'the test could not be run'],
      ['*', 'skipped', 'no tests in this package'],
    ]);
    expect(notes).toEqual(['blame: arg:dvc-dep8_1.0_all.deb', 'badpkg: Test dependencies are unsatisfiable.']);
  });
});

describe("autopkgtest's exit status", () => {
  it.each([
    [0, 'tests'],
    [2, 'tests'],
    [4, 'tests'],
    [6, 'tests'],
    [8, 'none-ran'],
    [12, 'badpkg'],
    [14, 'infrastructure'],
    [16, 'infrastructure'],
    [20, 'infrastructure'],
    [137, 'infrastructure'],
  ])('%i is %s', (code, kind) => {
    expect(autopkgtestExit(code).kind).toBe(kind);
  });
});

describe('the reports', () => {
  const { tests } = parseAutopkgtestSummary(REAL + 'racy FLAKY non-zero exit status 1\nsmoke PASS (superficial)\n');

  it('JUnit: one suite, failures with the reason, skips and flaky ones skipped with theirs', () => {
    const xml = autopkgtestToJUnit(tests, 'autopkgtest dvc-dep8 bookworm', 'dvc-dep8');
    expect(xml).toContain('<testsuite name="autopkgtest dvc-dep8 bookworm" tests="7" failures="1" errors="0" skipped="3">');
    expect(xml).toContain(
      '<testcase name="fails" classname="autopkgtest.dvc-dep8">\n      <failure message="non-zero exit status 1">non-zero exit status 1</failure>',
    );
    expect(xml).toContain('<skipped message="flaky (failure allowed): non-zero exit status 1"/>');
    expect(xml).toContain(
      '<skipped message="Test restriction &quot;needs-reboot&quot; requires testbed capability &quot;reboot&quot;"/>',
    );
    expect(xml).toContain('<testcase name="smoke" classname="autopkgtest.dvc-dep8"/>');
  });

  it('Markdown: counts in the heading, failures first', () => {
    const md = autopkgtestToMarkdown(tests, 'autopkgtest dvc-dep8 bookworm');
    expect(md.split('\n')[0]).toBe('### autopkgtest dvc-dep8 bookworm: 3/7 passed, 1 failed, 2 skipped, 1 flaky');
    const rows = md.split('\n').filter((l) => /^\| (?!test|---)/.test(l));
    expect(rows.map((r) => r.split(' | ')[0].slice(2))).toEqual([
      'fails',
      'racy',
      'reboots',
      'skips',
      'passes',
      'machine',
      'smoke',
    ]);
  });
});
