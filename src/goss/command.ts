import { parseGossReport, GossReportError, type GossReport } from '../reports/goss.js';

/**
 * goss's command line and what its exit status and stdout mean, as measured with goss 0.4.9 and
 * 0.4.10 (Debian builds; fixtures and manifest.json in __tests__/fixtures/goss/):
 *
 * - Global flags (--gossfile, --vars) go before `validate`; after it they are a usage error.
 * - Exit 0: all tests passed. Exit 1: tests failed, and also any usage error (bad flag or
 *   format) — told apart only by the missing report. Exit 3: with --retry-timeout, tests still
 *   failed when the timeout ran out. Exit 78: the gossfile or vars file cannot be read,
 *   parsed, rendered or has an unknown resource or attribute.
 * - Everything goss says is on stdout, errors included ("Error: yaml: line 2: ..."); stderr
 *   only carries deprecation warnings.
 * - With --retry-timeout and --format json, every attempt prints a complete one-line JSON
 *   report, then "Retrying in 1s (elapsed/timeout time: ...)", two blank lines and
 *   "Attempt #N:". The last report is the final result; after a timeout it is followed by
 *   "Error: timeout of 2s reached before tests entered a passing state". Values inside a
 *   report are JSON strings, so command output cannot fake these lines, and a single run
 *   with retries gives an exact final report: no second run is needed.
 */

export type GossFormat =
  'json' | 'silent' | 'rspecish' | 'documentation' | 'junit' | 'tap' | 'nagios' | 'prometheus' | 'structured';

export interface GossValidateOptions {
  /** Path of the goss binary where it runs (in the guest). */
  readonly goss: string;
  readonly gossfile: string;
  /** Vars file; '' or undefined for none. */
  readonly vars?: string;
  /** Seconds to retry failing tests; 0 or undefined runs them once. */
  readonly retryTimeout?: number;
  /** Seconds between attempts when retrying (goss's default is 1s). */
  readonly sleep?: number;
  readonly format?: GossFormat;
}

/** argv of `goss --gossfile F [--vars V] validate --format json --format-options sort --no-color [--retry-timeout 30s --sleep 1s]`. */
export function gossValidateArgv(options: GossValidateOptions): string[] {
  const argv = [options.goss, '--gossfile', options.gossfile];
  if (options.vars) argv.push('--vars', options.vars);
  // --no-color: error lines must not carry ANSI codes. sort: goss runs tests concurrently and
  // reports them in finishing order; sorted, two runs of the same gossfile give comparable reports.
  argv.push('validate', '--format', options.format ?? 'json', '--format-options', 'sort', '--no-color');
  if (options.retryTimeout && options.retryTimeout > 0) {
    argv.push(
      '--retry-timeout',
      `${Math.round(options.retryTimeout)}s`,
      '--sleep',
      `${Math.max(1, Math.round(options.sleep ?? 1))}s`,
    );
  }
  return argv;
}

export const GOSS_EXIT = {
  passed: 0,
  /** Also goss's exit status for command-line usage errors. */
  failed: 1,
  retryTimedOut: 3,
  loadError: 78,
} as const;

/** What one `goss validate --format json` run amounted to. */
export type GossRunResult =
  | { readonly kind: 'passed'; readonly report: GossReport; readonly attempts: number }
  | {
      readonly kind: 'failed';
      readonly report: GossReport;
      readonly attempts: number;
      /** true when --retry-timeout ran out (exit 3) rather than a single run failing. */
      readonly retryTimedOut: boolean;
    }
  /** The gossfile or vars file could not be loaded: the project's goss file is at fault. */
  | { readonly kind: 'load-error'; readonly message: string }
  /** goss did not produce a usable result (usage error, crash, cut-off output). */
  | { readonly kind: 'error'; readonly message: string };

export interface GossOutput {
  /** The last complete report: the final result of the run. */
  readonly report: GossReport;
  /** How many reports goss printed (1 without retries). */
  readonly attempts: number;
  readonly retryTimedOut: boolean;
}

const REPORT_LINE = /^\s*\{"results":/;
const TIMEOUT_LINE = /^Error: timeout of \S+ reached before tests entered a passing state/m;

/**
 * The final report in the stdout of `goss validate --format json`, with or without retries.
 * Returns undefined when there is no report at all; throws GossReportError when the last
 * report is cut off or malformed, since an earlier attempt's report would then be mistaken
 * for the result.
 */
export function finalGossReport(stdout: string): GossOutput | undefined {
  const reportLines = stdout.split(/\r?\n|\r/).filter((line) => REPORT_LINE.test(line));
  const last = reportLines.at(-1);
  if (last === undefined) return undefined;
  let report: GossReport;
  try {
    report = parseGossReport(last.trim());
  } catch (err) {
    if (err instanceof GossReportError) {
      throw new GossReportError(`goss's last report (attempt ${reportLines.length}) is incomplete or malformed: ${err.message}`);
    }
    throw err;
  }
  return { report, attempts: reportLines.length, retryTimedOut: TIMEOUT_LINE.test(stdout) };
}

/** goss's own "Error: ..." lines, for messages; the output's tail when it printed none. */
export function gossErrorMessage(stdout: string, stderr = ''): string {
  const errors = stdout
    .split(/\r?\n/)
    .filter((l) => l.startsWith('Error: '))
    .map((l) => l.slice('Error: '.length).trim());
  if (errors.length > 0) return errors.join('; ');
  const tail = (stderr.trim() || stdout.trim()).split('\n').slice(-5).join('\n').trim();
  return tail || 'no output';
}

/** Turns a goss run's exit status and stdout into a result; the lead's validate stage calls this. */
export function classifyGossRun(exitCode: number, stdout: string, stderr = ''): GossRunResult {
  if (exitCode === GOSS_EXIT.loadError) {
    return { kind: 'load-error', message: `goss could not load the gossfile: ${gossErrorMessage(stdout, stderr)}` };
  }
  let output: GossOutput | undefined;
  try {
    output = finalGossReport(stdout);
  } catch (err) {
    return { kind: 'error', message: `goss exited with status ${exitCode}: ${(err as Error).message}` };
  }
  if (!output) {
    // Exit 1 without a report is a usage error, not a test failure.
    return {
      kind: 'error',
      message: `goss exited with status ${exitCode} without a report: ${gossErrorMessage(stdout, stderr)}`,
    };
  }
  const { report, attempts, retryTimedOut } = output;
  const reportPassed = report.summary.failed === 0;
  if (exitCode === GOSS_EXIT.passed && reportPassed) return { kind: 'passed', report, attempts };
  if ((exitCode === GOSS_EXIT.failed || exitCode === GOSS_EXIT.retryTimedOut) && !reportPassed) {
    return { kind: 'failed', report, attempts, retryTimedOut: exitCode === GOSS_EXIT.retryTimedOut || retryTimedOut };
  }
  return {
    kind: 'error',
    message: `goss exited with status ${exitCode} but its report says ${report.summary.failed} of ${report.summary.tests} tests failed: ${gossErrorMessage(stdout, stderr)}`,
  };
}
