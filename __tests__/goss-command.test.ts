import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifyGossRun, finalGossReport, gossErrorMessage, gossValidateArgv, GOSS_EXIT } from '../src/goss/command.js';
import { GossReportError } from '../src/reports/goss.js';

const FIXTURES = join(import.meta.dirname, 'fixtures/goss');
const stdoutOf = (name: string): string => readFileSync(join(FIXTURES, `${name}.stdout.txt`), 'utf8');
/** Exit statuses of the recorded runs (record.sh), so the classifier is checked against real pairs. */
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as {
  exitCodes: Record<string, number>;
};
const recorded = (name: string): [number, string] => [manifest.exitCodes[name], stdoutOf(name)];

describe('gossValidateArgv', () => {
  it.each([
    [
      'a single run',
      { goss: '/usr/local/bin/goss', gossfile: '/tmp/goss.yaml' },
      [
        '/usr/local/bin/goss',
        '--gossfile',
        '/tmp/goss.yaml',
        'validate',
        '--format',
        'json',
        '--format-options',
        'sort',
        '--no-color',
      ],
    ],
    [
      'vars and retries (global flags before validate, as goss requires)',
      { goss: 'goss', gossfile: 'g.yaml', vars: 'v.yaml', retryTimeout: 30 },
      [
        'goss',
        '--gossfile',
        'g.yaml',
        '--vars',
        'v.yaml',
        'validate',
        '--format',
        'json',
        '--format-options',
        'sort',
        '--no-color',
        '--retry-timeout',
        '30s',
        '--sleep',
        '1s',
      ],
    ],
    [
      'no retry flags for a zero timeout, empty vars ignored',
      { goss: 'goss', gossfile: 'g.yaml', vars: '', retryTimeout: 0, format: 'silent' as const },
      ['goss', '--gossfile', 'g.yaml', 'validate', '--format', 'silent', '--format-options', 'sort', '--no-color'],
    ],
    [
      "a custom sleep, never below goss's 1s",
      { goss: 'goss', gossfile: 'g.yaml', retryTimeout: 90, sleep: 0.2 },
      [
        'goss',
        '--gossfile',
        'g.yaml',
        'validate',
        '--format',
        'json',
        '--format-options',
        'sort',
        '--no-color',
        '--retry-timeout',
        '90s',
        '--sleep',
        '1s',
      ],
    ],
  ])('%s', (_what, options, argv) => {
    expect(gossValidateArgv(options)).toEqual(argv);
  });
});

describe('recorded goss runs', () => {
  it('used the exit statuses the classifier expects', () => {
    expect(manifest.exitCodes).toEqual({
      passing: GOSS_EXIT.passed,
      failing: GOSS_EXIT.failed,
      unparsable: GOSS_EXIT.loadError,
      'usage-error': GOSS_EXIT.failed,
      'retry-passes': GOSS_EXIT.passed,
      'retry-times-out': GOSS_EXIT.retryTimedOut,
    });
  });

  it('passing: passed, one attempt', () => {
    const result = classifyGossRun(...recorded('passing'));
    expect(result).toMatchObject({ kind: 'passed', attempts: 1 });
  });

  it('failing: failed, not a retry timeout', () => {
    const result = classifyGossRun(...recorded('failing'));
    expect(result).toMatchObject({ kind: 'failed', attempts: 1, retryTimedOut: false });
    if (result.kind === 'failed') expect(result.report.summary.failed).toBe(7);
  });

  it("unparsable gossfile: a load error with goss's own message", () => {
    expect(classifyGossRun(...recorded('unparsable'))).toEqual({
      kind: 'load-error',
      message: 'goss could not load the gossfile: yaml: line 2: did not find expected key',
    });
  });

  it('usage error: exit 1 without a report is not a test failure', () => {
    const result = classifyGossRun(...recorded('usage-error'));
    expect(result).toMatchObject({ kind: 'error' });
    if (result.kind === 'error') expect(result.message).toContain('bad output format: no-such-format');
  });

  it('retry that passes: only the final attempt counts', () => {
    const [exitCode, stdout] = recorded('retry-passes');
    expect(stdout).toMatch(/Retrying in 1s[^\n]*\n\n\nAttempt #2:\n/);
    const result = classifyGossRun(exitCode, stdout);
    expect(result).toMatchObject({ kind: 'passed' });
    if (result.kind !== 'passed') return;
    expect(result.attempts).toBeGreaterThanOrEqual(3);
    expect(result.report.summary).toMatchObject({ tests: 2, failed: 0 });
    // Earlier attempts failed: the parser must not have merged or picked one of them.
    expect(stdout.split('\n').filter((l) => l.includes('"failed-count":1'))).toHaveLength(result.attempts - 1);
  });

  it("retry that times out: exit 3, the last attempt's failures", () => {
    const result = classifyGossRun(...recorded('retry-times-out'));
    expect(result).toMatchObject({ kind: 'failed', retryTimedOut: true, attempts: 2 });
    if (result.kind === 'failed') expect(result.report.summary).toMatchObject({ tests: 2, failed: 1 });
  });
});

describe('finalGossReport', () => {
  const report = (failed: number): string =>
    JSON.stringify({
      results: [{ 'resource-type': 'Command', 'resource-id': 'x', property: 'exit-status', result: failed ? 1 : 0 }],
      summary: { 'test-count': 1, 'failed-count': failed, 'skipped-count': 0, 'total-duration': 1 },
    });

  it('takes the last of several reports, with CRLF line ends from a console', () => {
    const out = [report(1), 'Retrying in 1s (elapsed/timeout time: 0.001s/5s)', '', '', 'Attempt #2:', report(0), ''].join(
      '\r\n',
    );
    expect(finalGossReport(out)).toMatchObject({ attempts: 2, retryTimedOut: false, report: { summary: { failed: 0 } } });
  });

  it('refuses a cut-off last report instead of returning the attempt before it', () => {
    const out = [report(1), 'Attempt #2:', report(0).slice(0, 40)].join('\n');
    expect(() => finalGossReport(out)).toThrow(GossReportError);
    expect(() => finalGossReport(out)).toThrow(/attempt 2/);
  });

  it('is not fooled by report-like text inside command output', () => {
    const tricky = JSON.stringify({
      results: [
        {
          'resource-type': 'Command',
          'resource-id': 'echo',
          property: 'stdout',
          result: 0,
          'summary-line': '\n{"results":[]}\nError: timeout of 1s reached before tests entered a passing state',
        },
      ],
      summary: { 'test-count': 1, 'failed-count': 0 },
    });
    expect(finalGossReport(tricky)).toMatchObject({ attempts: 1, retryTimedOut: false });
  });

  it('returns undefined when there is no report', () => {
    expect(finalGossReport('Error: file error: open goss.yaml: no such file or directory\n')).toBeUndefined();
  });
});

describe('classifyGossRun', () => {
  const passedReport = JSON.stringify({ results: [], summary: { 'test-count': 0, 'failed-count': 0 } });
  it.each([
    ['exit 0 with failures in the report', 0, JSON.stringify({ results: [], summary: { 'test-count': 1, 'failed-count': 1 } })],
    ['exit 1 with a passing report', 1, passedReport],
    ['a crash', 2, 'panic: runtime error: invalid memory address\n'],
    ['killed', 137, ''],
  ])('%s is an error, not a verdict', (_what, exitCode, stdout) => {
    expect(classifyGossRun(exitCode, stdout).kind).toBe('error');
  });

  it('says what goss said when there is no Error line', () => {
    expect(gossErrorMessage('', 'panic: boom\ngoroutine 1')).toBe('panic: boom\ngoroutine 1');
    expect(gossErrorMessage('', '')).toBe('no output');
  });
});
