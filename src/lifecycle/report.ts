/**
 * The life cycle's verdicts from what the guest's script wrote (src/lifecycle/lifecycle-in-guest.sh): its steps with
 * their exit status, the paths left behind after the purge, the paths that were there before and are gone,
 * and dpkg's lines about failed maintainer scripts. Pure functions; the stage is src/stages/lifecycle.ts.
 */
import { tableCell } from '../reports/markdown.js';
import { junitDocument } from '../reports/junit.js';
import { xmlAttr, xmlText } from '../reports/xml.js';

export interface LifecycleStep {
  /** install-previous, upgrade, install, remove, purge */
  name: string;
  exitCode: number;
  /** What the step did, as the script said it. */
  what: string;
}

export interface LifecycleReport {
  steps: LifecycleStep[];
  leftovers: string[];
  missing: string[];
  scriptErrors: string[];
}

/** At most this many paths of each list are kept in result.json and the summary; the files have them all. */
export const MAX_LISTED = 50;

export function parseSteps(text: string): LifecycleStep[] {
  return text
    .split('\n')
    .map((l) => l.split('\t'))
    .filter((f) => f.length >= 3 && /^[a-z-]+$/.test(f[0]) && /^\d+$/.test(f[1]))
    .map(([name, code, ...what]) => ({ name, exitCode: Number(code), what: what.join(' ') }));
}

export function parseLines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

/** Why the life cycle failed, one line each; empty when it passed. */
export function lifecycleProblems(report: LifecycleReport): string[] {
  const problems = report.steps
    .filter((s) => s.exitCode !== 0)
    .map((s) => `${s.name} exited with status ${s.exitCode}: ${s.what}`);
  problems.push(...report.scriptErrors);
  if (report.leftovers.length)
    problems.push(`${report.leftovers.length} path(s) left behind after the purge, owned by no package`);
  if (report.missing.length)
    problems.push(`${report.missing.length} path(s) of the system before the install are gone after the purge`);
  return problems;
}

const CHECKS = ['left behind after the purge', 'the system before the install is whole after the purge'] as const;

/** One testsuite: a testcase per step and one per file system check. */
export function lifecycleToJUnit(report: LifecycleReport, suiteName: string, source: string): string {
  const cases: { name: string; failure?: string; body?: string }[] = report.steps.map((s) => ({
    name: `${s.name}: ${s.what}`,
    failure: s.exitCode !== 0 ? `exit status ${s.exitCode}` : undefined,
    body: report.scriptErrors.filter((e) => e.startsWith(`${s.name}: `)).join('\n'),
  }));
  const ran = report.steps.some((s) => s.name === 'purge');
  if (ran) {
    cases.push({
      name: `nothing ${CHECKS[0]}`,
      failure: report.leftovers.length ? `${report.leftovers.length} path(s) left behind` : undefined,
      body: report.leftovers.join('\n'),
    });
    cases.push({
      name: CHECKS[1],
      failure: report.missing.length ? `${report.missing.length} path(s) gone` : undefined,
      body: report.missing.join('\n'),
    });
  }
  const lines: string[] = [];
  for (const c of cases) {
    const open = `    <testcase name="${xmlAttr(c.name)}" classname="lifecycle.${xmlAttr(source)}"`;
    if (!c.failure) lines.push(`${open}/>`);
    else
      lines.push(
        `${open}>`,
        `      <failure message="${xmlAttr(c.failure)}">${xmlText(c.body ?? '')}</failure>`,
        '    </testcase>',
      );
  }
  const failures = cases.filter((c) => c.failure).length;
  return junitDocument(suiteName, { tests: cases.length, failures, skipped: 0 }, lines);
}

/** A line inside a code block: the guest names its files, and a backtick line would end the block early. */
function fenced(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/[`\u0000-\u001f\u007f]/g, '?');
}

export function lifecycleToMarkdown(report: LifecycleReport, heading: string): string {
  const problems = lifecycleProblems(report);
  const lines = [
    `### ${heading}: ${problems.length ? '❌ failed' : '✅ passed'}`,
    '',
    '| step | status | what |',
    '| --- | --- | --- |',
    ...report.steps.map((s) => `| ${s.name} | ${s.exitCode === 0 ? '✅ 0' : `❌ ${s.exitCode}`} | ${tableCell(s.what)} |`),
    '',
  ];
  const list = (title: string, paths: readonly string[]): void => {
    if (!paths.length) return;
    lines.push(
      `<details open><summary>${title} (${paths.length})</summary>`,
      '',
      '```text',
      ...paths.slice(0, MAX_LISTED).map(fenced),
    );
    if (paths.length > MAX_LISTED) lines.push(`… ${paths.length - MAX_LISTED} more in lifecycle/`);
    lines.push('```', '', '</details>', '');
  };
  list('left behind after the purge, owned by no package', report.leftovers);
  list('gone after the purge', report.missing);
  list('maintainer script errors', report.scriptErrors);
  return lines.join('\n');
}
