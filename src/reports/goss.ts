import { stringify as toYaml } from 'yaml';
import { junitDocument } from './junit.js';
import { xmlAttr, xmlText } from './xml.js';
import { tableCell } from './markdown.js';

/**
 * goss's JSON report (`goss validate --format json`) as a typed model, and the views of it
 * that CI systems read: JUnit XML, TAP 13, a Markdown job summary and pull-request annotations.
 *
 * The model follows what goss 0.4.x really prints (see __tests__/fixtures/goss/): expected and
 * found values live in `matcher-result`, errors in `err`, durations are nanoseconds. The flat
 * `expected`/`found`/`human` fields of goss 0.3.x are read too, so older binaries still report.
 */

export type GossOutcome = 'passed' | 'failed' | 'skipped';

export interface GossTest {
  /** As goss spells it: File, Service, HTTP... */
  readonly resourceType: string;
  readonly resourceId: string;
  readonly property: string;
  /** The gossfile's `title:` of the resource, or ''. */
  readonly title: string;
  /** The gossfile's `meta:` of the resource, or undefined. */
  readonly meta: Readonly<Record<string, unknown>> | undefined;
  readonly outcome: GossOutcome;
  /** What the test wanted, one line, e.g. `true` or `patterns ["a","b"]`; '' when skipped. */
  readonly expected: string;
  /** What goss found, one line, e.g. `false` or `missing ["b"]`; '' when skipped or when goss met an error. */
  readonly found: string;
  /** goss's own multi-line explanation ("File: /x: exists:\nExpected\n    false\nto equal\n    true"). */
  readonly summaryLine: string;
  /** Why goss could not evaluate the test (connection refused, missing attribute...), if it could not. */
  readonly error: string | undefined;
  readonly durationSeconds: number;
}

export interface GossSummary {
  readonly tests: number;
  readonly failed: number;
  readonly skipped: number;
  readonly passed: number;
  readonly durationSeconds: number;
}

export interface GossReport {
  readonly tests: readonly GossTest[];
  readonly summary: GossSummary;
}

/** A report that is not goss JSON; the message says what is wrong with it. */
export class GossReportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GossReportError';
  }
}

const NANOSECONDS = 1e9;

/** Reads one goss JSON report (text or already parsed). Throws GossReportError. */
export function parseGossReport(input: string | unknown): GossReport {
  let data: unknown = input;
  if (typeof input === 'string') {
    try {
      data = JSON.parse(input);
    } catch (err) {
      throw new GossReportError(`goss output is not JSON: ${(err as Error).message}`);
    }
  }
  if (!isRecord(data) || !Array.isArray(data.results) || !isRecord(data.summary)) {
    throw new GossReportError('goss output has no "results" list and "summary" object');
  }
  const tests = data.results.map((raw, index) => parseTest(raw, index));
  const summary = data.summary;
  const count = (key: string, fallback: number): number => (typeof summary[key] === 'number' ? summary[key] : fallback);
  const failed = count('failed-count', tests.filter((t) => t.outcome === 'failed').length);
  const skipped = count('skipped-count', tests.filter((t) => t.outcome === 'skipped').length);
  const total = count('test-count', tests.length);
  return {
    tests,
    summary: {
      tests: total,
      failed,
      skipped,
      passed: total - failed - skipped,
      durationSeconds: count('total-duration', 0) / NANOSECONDS,
    },
  };
}

function parseTest(raw: unknown, index: number): GossTest {
  if (!isRecord(raw)) throw new GossReportError(`goss result #${index + 1} is not an object`);
  const text = (key: string): string => (typeof raw[key] === 'string' ? raw[key] : '');
  const resourceType = text('resource-type');
  if (!resourceType) throw new GossReportError(`goss result #${index + 1} has no resource-type`);
  // result is the authority (0 pass, 1 fail, 2 skip); `successful` is also true for skipped tests.
  const outcome: GossOutcome =
    raw.result === 2 || raw.skipped === true
      ? 'skipped'
      : raw.result === 0 || (raw.result === undefined && raw.successful === true)
        ? 'passed'
        : 'failed';
  const error = typeof raw.err === 'string' && raw.err ? raw.err : isRecord(raw.err) ? JSON.stringify(raw.err) : undefined;
  const { expected, found } = outcome === 'skipped' ? { expected: '', found: '' } : describeValues(raw, error);
  return {
    resourceType,
    resourceId: text('resource-id'),
    property: text('property'),
    title: text('title'),
    meta: isRecord(raw.meta) ? raw.meta : undefined,
    outcome,
    expected,
    found,
    summaryLine: text('summary-line') || text('human'),
    error,
    durationSeconds: typeof raw.duration === 'number' ? raw.duration / NANOSECONDS : 0,
  };
}

/** One-line expected/found texts from goss 0.4's matcher-result, or 0.3's expected/found lists. */
function describeValues(raw: Record<string, unknown>, error: string | undefined): { expected: string; found: string } {
  const matcher = isRecord(raw['matcher-result']) ? raw['matcher-result'] : undefined;
  if (!matcher) {
    const list = (v: unknown): string => (Array.isArray(v) ? v.map(String).join(', ') : v == null ? '' : String(v));
    return { expected: list(raw.expected), found: error ? '' : list(raw.found) };
  }
  const missing = nonEmptyList(matcher['missing-elements']);
  const extra = nonEmptyList(matcher['extra-elements']);
  const isPatternMatch = missing !== undefined || extra !== undefined || Array.isArray(matcher.expected);
  const expected =
    matcher.expected === null || matcher.expected === undefined
      ? ''
      : Array.isArray(matcher.expected) && typeof matcher.message === 'string' && /pattern/.test(matcher.message)
        ? `patterns ${oneLine(matcher.expected)}`
        : oneLine(matcher.expected);
  let found: string;
  // The error is reported on its own (GossTest.error); repeating it as the found value adds nothing.
  if (error) found = '';
  else if (isPatternMatch && (missing || extra)) {
    found = [missing && `missing ${oneLine(missing)}`, extra && `unexpected ${oneLine(extra)}`].filter(Boolean).join('; ');
  } else if (matcher.actual === null || matcher.actual === undefined) found = '';
  // goss shows a stream it matched patterns against (file contents, command output) as
  // "object: *os.File" or {}: say which patterns were found instead.
  else if (isRecord(matcher.actual) || (typeof matcher.actual === 'string' && matcher.actual.startsWith('object: '))) {
    found = Array.isArray(matcher['found-elements']) ? `found ${oneLine(matcher['found-elements'])}` : '';
  } else found = oneLine(matcher.actual);
  return { expected, found };
}

function nonEmptyList(value: unknown): unknown[] | undefined {
  return Array.isArray(value) && value.length > 0 ? value : undefined;
}

function oneLine(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// Names shared by every view, so that a test reads the same in JUnit, TAP, Markdown and annotations.

/** "service nginx running": the gossfile's own words (resource keys are lower case there). */
export function gossTestName(test: GossTest): string {
  return [test.resourceType.toLowerCase(), test.resourceId, test.property].filter(Boolean).join(' ');
}

/** "expected true, found false", or the error goss met. */
export function gossFailureMessage(test: GossTest): string {
  if (test.error) return `error: ${test.error}`;
  if (!test.expected && !test.found) return firstLine(test.summaryLine) || 'failed';
  return `expected ${test.expected || '(nothing)'}, found ${test.found || '(nothing)'}`;
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim()) ?? '';
}

// ---------------------------------------------------------------------------------------------
// JUnit XML

/**
 * JUnit XML as the common JUnit reporting actions read it: one testsuite named goss, and a
 * non-empty classname on every testcase (goss's own JUnit output leaves it empty, which
 * those actions reject or group under "undefined").
 */
export function gossToJUnit(report: GossReport, options: { suiteName?: string; timestamp?: Date } = {}): string {
  const { summary } = report;
  const suite = options.suiteName ?? 'goss';
  const lines: string[] = [];
  for (const test of report.tests) {
    const open = `    <testcase name="${xmlAttr(gossTestName(test))}" classname="goss.${xmlAttr(test.resourceType.toLowerCase())}" time="${seconds(test.durationSeconds)}"`;
    if (test.outcome === 'passed') {
      lines.push(`${open}/>`);
    } else if (test.outcome === 'skipped') {
      lines.push(`${open}>`, '      <skipped/>', '    </testcase>');
    } else {
      const type = test.error ? 'error' : `goss.${test.resourceType.toLowerCase()}.${test.property}`;
      const body = [
        test.title && `title: ${test.title}`,
        test.expected && `expected: ${test.expected}`,
        test.found && `found: ${test.found}`,
        test.error && `error: ${test.error}`,
        test.summaryLine,
      ]
        .filter(Boolean)
        .join('\n');
      lines.push(
        `${open}>`,
        `      <failure message="${xmlAttr(gossFailureMessage(test))}" type="${xmlAttr(type)}">${xmlText(body)}</failure>`,
        '    </testcase>',
      );
    }
  }
  return junitDocument(
    suite,
    { tests: summary.tests, failures: summary.failed, skipped: summary.skipped, seconds: summary.durationSeconds },
    lines,
    options.timestamp,
  );
}

function seconds(value: number): string {
  return value.toFixed(3);
}

// ---------------------------------------------------------------------------------------------
// TAP 13

export function gossToTap(report: GossReport): string {
  const lines = ['TAP version 13', `1..${report.tests.length}`];
  report.tests.forEach((test, index) => {
    const description = tapDescription(gossTestName(test));
    if (test.outcome === 'skipped') {
      lines.push(`ok ${index + 1} - ${description} # SKIP`);
    } else if (test.outcome === 'passed') {
      lines.push(`ok ${index + 1} - ${description}`);
    } else {
      lines.push(`not ok ${index + 1} - ${description}`);
      const diagnostic: Record<string, unknown> = {
        message: gossFailureMessage(test),
        severity: 'fail',
        ...(test.title ? { title: test.title } : {}),
        ...(test.expected ? { expected: test.expected } : {}),
        ...(test.found ? { found: test.found } : {}),
        ...(test.error ? { error: test.error } : {}),
        ...(test.meta ? { meta: test.meta } : {}),
        duration_ms: Math.round(test.durationSeconds * 1000),
      };
      lines.push(
        '  ---',
        ...toYaml(diagnostic, { lineWidth: 0 })
          .trimEnd()
          .split('\n')
          .map((l) => `  ${l}`),
        '  ...',
      );
    }
  });
  lines.push(`# tests ${report.summary.tests}, failed ${report.summary.failed}, skipped ${report.summary.skipped}`);
  return lines.join('\n') + '\n';
}

/** A TAP description is one line, and an unescaped # would start a directive. */
function tapDescription(name: string): string {
  return name
    .replace(/\\/g, '\\\\')
    .replace(/#/g, '\\#')
    .replace(/\s*[\r\n]+\s*/g, ' ');
}

// ---------------------------------------------------------------------------------------------
// Markdown (job summary)

/** A job-summary section: failures (and skips) in a table, a count line, passed tests folded away. */
export function gossToMarkdown(report: GossReport, options: { heading?: string } = {}): string {
  const { summary } = report;
  const failed = report.tests.filter((t) => t.outcome === 'failed');
  const skipped = report.tests.filter((t) => t.outcome === 'skipped');
  const passed = report.tests.filter((t) => t.outcome === 'passed');
  const out: string[] = [`### ${options.heading ?? 'goss'}`, ''];
  if (failed.length + skipped.length > 0) {
    out.push('| | Resource | Property | Expected | Found |', '|---|---|---|---|---|');
    for (const test of failed) {
      const found = test.error ? `error: ${test.error}` : test.found;
      out.push(row(['❌', resource(test), test.property, test.expected, found]));
    }
    for (const test of skipped) out.push(row(['⏭️', resource(test), test.property, 'skipped', '']));
    out.push('');
  }
  const verdict =
    summary.failed > 0
      ? `**${summary.failed} of ${summary.tests} tests failed**`
      : `**All ${summary.tests - summary.skipped} tests passed**`;
  out.push(
    `${verdict}: ${summary.passed} passed, ${summary.failed} failed, ${summary.skipped} skipped in ${summary.durationSeconds.toFixed(1)}s.`,
    '',
  );
  if (passed.length > 0) {
    out.push(
      '<details>',
      `<summary>${passed.length} passed</summary>`,
      '',
      '| Resource | Property | Value |',
      '|---|---|---|',
      ...passed.map((t) => row([resource(t), t.property, t.found || t.expected])),
      '',
      '</details>',
      '',
    );
  }
  return out.join('\n');
}

function resource(test: GossTest): string {
  const name = `${test.resourceType.toLowerCase()} ${test.resourceId}`;
  return test.title ? `${name} (${test.title})` : name;
}

function row(cells: readonly string[]): string {
  return `| ${cells.map(tableCell).join(' | ')} |`;
}

// ---------------------------------------------------------------------------------------------
// Annotations

export interface GossAnnotation {
  /** "goss: service nginx running" */
  readonly title: string;
  /** "expected true, found false" */
  readonly message: string;
  /** The gossfile, relative to the repository, so the annotation lands on it. */
  readonly file: string;
}

/** One annotation per failed test, worded for a pull request. */
export function gossAnnotations(report: GossReport, gossfileRelPath: string): GossAnnotation[] {
  return report.tests
    .filter((t) => t.outcome === 'failed')
    .map((test) => ({
      title: `goss: ${gossTestName(test)}`.replace(/\s*[\r\n]+\s*/g, ' '),
      message: test.title ? `${test.title}: ${gossFailureMessage(test)}` : gossFailureMessage(test),
      file: gossfileRelPath,
    }));
}
