/**
 * autopkgtest's results as debian-vm-ci reports them: its summary file parsed (one line per test, written by
 * autopkgtest's adtlog.report as `%-20s %s`), its exit status explained, and the per-test results as JUnit and
 * Markdown. Pure functions; the stage in src/stages/autopkgtest.ts runs autopkgtest in the guest.
 */
import { junitDocument } from '../reports/junit.js';
import { xmlAttr, xmlText } from '../reports/xml.js';
import { tableCell } from '../reports/markdown.js';

export type AutopkgtestOutcome = 'passed' | 'failed' | 'skipped' | 'flaky';

export interface AutopkgtestTest {
  name: string;
  outcome: AutopkgtestOutcome;
  /** What autopkgtest wrote after the verdict word ("non-zero exit status 1", the skip reason, "superficial"). */
  detail: string;
}

export interface AutopkgtestSummary {
  tests: AutopkgtestTest[];
  /** Lines that are no test's verdict: "blame: ...", "badpkg: ...", "erroneous package: ...". */
  notes: string[];
}

const VERDICT: Record<string, AutopkgtestOutcome> = {
  PASS: 'passed',
  FAIL: 'failed',
  BROKEN: 'failed',
  SKIP: 'skipped',
  FLAKY: 'flaky',
  NEUTRAL: 'skipped',
};

/** Parses autopkgtest's --summary-file. Test names are single words (DEP-8), "*" for the whole package. */
export function parseAutopkgtestSummary(text: string): AutopkgtestSummary {
  const tests: AutopkgtestTest[] = [];
  const notes: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (!line) continue;
    const m = /^(\S+)\s+(PASS|FAIL|BROKEN|SKIP|FLAKY|NEUTRAL)\b\s*(.*)$/.exec(line);
    if (m && !m[1].endsWith(':')) {
      const detail = m[3].replace(/^\((.*)\)$/, '$1');
      // autopkgtest 5.28 writes the verdict of a test it cannot run twice (measured: needs-reboot under null).
      const same = tests.find((t) => t.name === m[1] && t.outcome === VERDICT[m[2]] && t.detail === detail);
      if (!same) tests.push({ name: m[1], outcome: VERDICT[m[2]], detail });
    } else {
      notes.push(line);
    }
  }
  return { tests, notes };
}

export interface AutopkgtestCounts {
  tests: number;
  passed: number;
  failed: number;
  skipped: number;
  flaky: number;
}

/** "1 failed", "2 skipped", "1 flaky": the counts besides the passed ones that are not 0. */
export function otherOutcomes(c: AutopkgtestCounts): string[] {
  return [c.failed && `${c.failed} failed`, c.skipped && `${c.skipped} skipped`, c.flaky && `${c.flaky} flaky`].filter(
    (s): s is string => Boolean(s),
  );
}

export function countOutcomes(tests: readonly AutopkgtestTest[]): AutopkgtestCounts {
  const n = (o: AutopkgtestOutcome): number => tests.filter((t) => t.outcome === o).length;
  return { tests: tests.length, passed: n('passed'), failed: n('failed'), skipped: n('skipped'), flaky: n('flaky') };
}

/**
 * What autopkgtest's exit status means (autopkgtest(1), EXIT STATUS): its bits 2 (a test skipped), 4 (a test
 * failed) and the codes 8 (no tests ran), 12 (the package could not be installed: the package is at fault),
 * 14, 16 and 20 (the testbed or autopkgtest itself failed: infrastructure).
 */
export function autopkgtestExit(code: number): { kind: 'tests' | 'none-ran' | 'badpkg' | 'infrastructure'; meaning: string } {
  if (code === 0) return { kind: 'tests', meaning: 'all tests passed' };
  if (code === 2) return { kind: 'tests', meaning: 'some tests were skipped, none failed' };
  if (code === 4 || code === 6) return { kind: 'tests', meaning: 'at least one test failed' };
  if (code === 8) return { kind: 'none-ran', meaning: 'no tests ran (none declared, or all skipped)' };
  if (code === 12) return { kind: 'badpkg', meaning: 'the package or its test dependencies could not be installed' };
  if (code === 14) return { kind: 'infrastructure', meaning: 'the testbed or autopkgtest failed while tests also failed' };
  if (code === 16) return { kind: 'infrastructure', meaning: 'the testbed failed' };
  if (code === 20) return { kind: 'infrastructure', meaning: 'autopkgtest failed (an unexpected error)' };
  return { kind: 'infrastructure', meaning: `autopkgtest exited with status ${code}` };
}

/** One testsuite for the package's DEP-8 tests; flaky tests are reported as skipped with the reason, as they do not fail the run. */
export function autopkgtestToJUnit(tests: readonly AutopkgtestTest[], suiteName: string, source: string): string {
  const c = countOutcomes(tests);
  const lines: string[] = [];
  for (const t of tests) {
    const open = `    <testcase name="${xmlAttr(t.name)}" classname="autopkgtest.${xmlAttr(source)}"`;
    if (t.outcome === 'passed') lines.push(`${open}/>`);
    else if (t.outcome === 'failed')
      lines.push(
        `${open}>`,
        `      <failure message="${xmlAttr(t.detail || 'failed')}">${xmlText(t.detail)}</failure>`,
        '    </testcase>',
      );
    else {
      const why = t.outcome === 'flaky' ? `flaky (failure allowed): ${t.detail}` : t.detail;
      lines.push(`${open}>`, `      <skipped message="${xmlAttr(why)}"/>`, '    </testcase>');
    }
  }
  return junitDocument(suiteName, { tests: c.tests, failures: c.failed, skipped: c.skipped + c.flaky }, lines);
}

const MARK: Record<AutopkgtestOutcome, string> = { passed: '✅ pass', failed: '❌ fail', skipped: '⏭️ skip', flaky: '⚠️ flaky' };

/** The per-test table, failures first. */
export function autopkgtestToMarkdown(tests: readonly AutopkgtestTest[], heading: string): string {
  const order: AutopkgtestOutcome[] = ['failed', 'flaky', 'skipped', 'passed'];
  const sorted = [...tests].sort((a, b) => order.indexOf(a.outcome) - order.indexOf(b.outcome));
  const c = countOutcomes(tests);
  const lines = [
    `### ${heading}: ${[`${c.passed}/${c.tests} passed`, ...otherOutcomes(c)].join(', ')}`,
    '',
    '| test | result | detail |',
    '| --- | --- | --- |',
    ...sorted.map((t) => `| ${tableCell(t.name)} | ${MARK[t.outcome]} | ${tableCell(t.detail)} |`),
    '',
  ];
  return lines.join('\n');
}
