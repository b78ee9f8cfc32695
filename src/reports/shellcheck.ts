import { isAbsolute, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Log, ReportingDescriptor, Result } from 'sarif';
import type { AnnotationProps } from '../host/reporter.js';
import { codeCell } from './markdown.js';

/** shellcheck's severities, most severe first. */
export const SEVERITIES = ['error', 'warning', 'info', 'style'] as const;
export type Severity = (typeof SEVERITIES)[number];
export type SeverityCounts = Record<Severity, number>;

/** One entry of `shellcheck --format=json1`'s `comments`; fields we do not read (fix) pass through untouched. */
export interface Json1Comment {
  file: string;
  line: number;
  endLine: number;
  column: number;
  endColumn: number;
  level: Severity;
  code: number;
  message: string;
  [other: string]: unknown;
}

/** A finding with its file relative to the repository root; columns are 1-based code points, endColumn exclusive. */
export interface Finding {
  /** Relative to the repository root with / separators; absolute when the file lies outside it. */
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  severity: Severity;
  /** "SC2086" */
  code: string;
  message: string;
}

/** shellcheck printed something that is not json1: a crash or a version we do not understand, never "no findings". */
export class Json1FormatError extends Error {
  override name = 'Json1FormatError';
}

export function wikiUrl(code: string): string {
  return `https://www.shellcheck.net/wiki/${code}`;
}

/** Parses and checks json1 output field by field, so that a format change fails loudly instead of dropping findings. */
export function parseJson1(stdout: string): Json1Comment[] {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch (error) {
    const start = stdout.trim().slice(0, 80);
    throw new Json1FormatError(`not JSON (${(error as Error).message}); output began ${JSON.stringify(start)}`);
  }
  const comments = (doc as { comments?: unknown } | null)?.comments;
  if (!Array.isArray(comments)) throw new Json1FormatError('no "comments" array: not --format=json1 output');
  return comments.map((comment: unknown, index) => {
    const c = comment as Record<string, unknown>;
    const problem =
      typeof c !== 'object' || c === null
        ? 'is not an object'
        : typeof c.file !== 'string'
          ? 'has no file'
          : !['line', 'endLine', 'column', 'endColumn', 'code'].every((k) => Number.isInteger(c[k]))
            ? 'lacks integer line, endLine, column, endColumn or code'
            : !(SEVERITIES as readonly unknown[]).includes(c.level)
              ? `has an unknown level ${JSON.stringify(c.level)}`
              : typeof c.message !== 'string'
                ? 'has no message'
                : undefined;
    if (problem) throw new Json1FormatError(`comment ${index} ${problem}: ${JSON.stringify(comment).slice(0, 200)}`);
    return c as Json1Comment;
  });
}

export interface PathBase {
  /** shellcheck's cwd: the paths it prints are relative to it. */
  cwd: string;
  /** Paths in findings are relative to this (the git top level, else the working directory). */
  repositoryRoot: string;
}

/** The file a json1 comment names, relative to the repository root (absolute when outside it), with / separators. */
export function repositoryPath(file: string, base: PathBase): string {
  const absolute = resolve(base.cwd, file);
  const rel = relative(base.repositoryRoot, absolute);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return absolute;
  return sep === '/' ? rel : rel.split(sep).join('/');
}

export function toFindings(comments: readonly Json1Comment[], base: PathBase): Finding[] {
  return comments.map((c) => ({
    file: repositoryPath(c.file, base),
    line: c.line,
    column: c.column,
    endLine: c.endLine,
    endColumn: c.endColumn,
    severity: c.level,
    code: `SC${c.code}`,
    message: c.message,
  }));
}

/** Stable report order: by file, then position, then code. */
export function compareFindings(a: Finding, b: Finding): number {
  return (
    (a.file < b.file ? -1 : a.file > b.file ? 1 : 0) ||
    a.line - b.line ||
    a.column - b.column ||
    (a.code < b.code ? -1 : a.code > b.code ? 1 : 0)
  );
}

/** lint/shellcheck.json: shellcheck's own json1, merged over invocations, each `file` rewritten relative to the repository root. */
export function json1Report(comments: readonly Json1Comment[], base: PathBase): { comments: Json1Comment[] } {
  return { comments: comments.map((c) => ({ ...c, file: repositoryPath(c.file, base) })) };
}

export type AnnotationKind = 'error' | 'warning' | 'notice';

export interface Annotation {
  kind: AnnotationKind;
  message: string;
  props: AnnotationProps;
}

const ANNOTATION_KIND: Record<Severity, AnnotationKind> = { error: 'error', warning: 'warning', info: 'notice', style: 'notice' };

/**
 * The annotation of one finding. Columns go along only for a one-line region: GitHub ignores
 * (and its API rejects) start and end columns that sit on different lines.
 */
export function annotationFor(finding: Finding): Annotation {
  const oneLine = finding.endLine === finding.line;
  return {
    kind: ANNOTATION_KIND[finding.severity],
    message: `${finding.message} See ${wikiUrl(finding.code)}`,
    props: {
      title: `${finding.code} (${finding.severity})`,
      ...(isAbsolute(finding.file) ? {} : { file: finding.file }),
      startLine: finding.line,
      endLine: finding.endLine,
      ...(oneLine ? { startColumn: finding.column, endColumn: finding.endColumn } : {}),
    },
  };
}

export function countBySeverity(findings: readonly Finding[]): SeverityCounts {
  const counts: SeverityCounts = { error: 0, warning: 0, info: 0, style: 0 };
  for (const f of findings) counts[f.severity] += 1;
  return counts;
}

/** True when severity is threshold or more severe; the threshold 'never' lets nothing through. */
export function isAtLeast(severity: Severity, threshold: Severity | 'never'): boolean {
  return threshold !== 'never' && SEVERITIES.indexOf(severity) <= SEVERITIES.indexOf(threshold);
}

/** "1 error, 2 warnings, 3 info, 1 style"; empty severities left out. */
export function describeCounts(counts: SeverityCounts): string {
  const noun: Record<Severity, [string, string]> = {
    error: ['error', 'errors'],
    warning: ['warning', 'warnings'],
    info: ['info', 'info'],
    style: ['style', 'style'],
  };
  return SEVERITIES.filter((s) => counts[s] > 0)
    .map((s) => `${counts[s]} ${noun[s][counts[s] === 1 ? 0 : 1]}`)
    .join(', ');
}

/** The stage's one-line summary: "12 scripts, 3 findings: 1 error, 2 warnings". */
export function summaryLine(scripts: number, counts: SeverityCounts): string {
  const total = SEVERITIES.reduce((sum, s) => sum + counts[s], 0);
  const head = `${scripts} ${scripts === 1 ? 'script' : 'scripts'}, ${total} ${total === 1 ? 'finding' : 'findings'}`;
  return total ? `${head}: ${describeCounts(counts)}` : head;
}

/** GitHub shows this many annotations of each kind per step; the rest exist only in the files. */
export const GITHUB_ANNOTATIONS_SHOWN_PER_KIND = 10;

export interface MarkdownInput {
  scripts: readonly string[];
  findings: readonly Finding[];
  failOn: Severity | 'never';
  /** Names of the report files, as the reader will find them (lint/shellcheck.sarif). */
  reportFiles: readonly string[];
}

const MAX_LISTED_SCRIPTS = 300;

/** lint/summary.md: the summary line, findings per file and severity, the policy, and the scripts checked. */
export function lintMarkdown(input: MarkdownInput): string {
  const counts = countBySeverity(input.findings);
  const lines = [`### ShellCheck: ${summaryLine(input.scripts.length, counts)}`, ''];
  if (input.findings.length) {
    const perFile = new Map<string, SeverityCounts>();
    for (const f of input.findings) {
      const row = perFile.get(f.file) ?? { error: 0, warning: 0, info: 0, style: 0 };
      row[f.severity] += 1;
      perFile.set(f.file, row);
    }
    lines.push('| file | error | warning | info | style |', '| --- | ---: | ---: | ---: | ---: |');
    for (const [file, row] of [...perFile].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      lines.push(`| ${codeCell(file)} | ${SEVERITIES.map((s) => row[s]).join(' | ')} |`);
    }
    lines.push(`| **total** | ${SEVERITIES.map((s) => `**${counts[s]}**`).join(' | ')} |`, '');
  }
  const failing = input.findings.filter((f) => isAtLeast(f.severity, input.failOn)).length;
  lines.push(
    input.failOn === 'never'
      ? 'Findings do not fail the run (lint-fail-on: never).'
      : `Findings of severity ${input.failOn} or worse fail the run (lint-fail-on: ${input.failOn}): ${failing} ${failing === 1 ? 'does' : 'do'}.`,
    '',
  );
  const shown = Object.values(annotationKindCounts(input.findings)).some((n) => n > GITHUB_ANNOTATIONS_SHOWN_PER_KIND);
  if (shown) {
    lines.push(
      `GitHub shows only ${GITHUB_ANNOTATIONS_SHOWN_PER_KIND} annotations of each kind per step; every finding is in ${input.reportFiles.join(' and ')}.`,
      '',
    );
  }
  if (input.scripts.length) {
    const listed = input.scripts.slice(0, MAX_LISTED_SCRIPTS).map((s) => `- ${codeCell(s)}`);
    const more = input.scripts.length - listed.length;
    lines.push(
      `<details><summary>${input.scripts.length} ${input.scripts.length === 1 ? 'script' : 'scripts'} checked</summary>`,
      '',
      ...listed,
      ...(more > 0 ? [`- … and ${more} more`] : []),
      '',
      '</details>',
      '',
    );
  }
  return lines.join('\n');
}

function annotationKindCounts(findings: readonly Finding[]): Record<AnnotationKind, number> {
  const counts: Record<AnnotationKind, number> = { error: 0, warning: 0, notice: 0 };
  for (const f of findings) counts[ANNOTATION_KIND[f.severity]] += 1;
  return counts;
}

const SARIF_LEVEL: Record<Severity, Result.level> = { error: 'error', warning: 'warning', info: 'note', style: 'note' };
/** GitHub code scanning's severity for non-security alerts. */
const PROBLEM_SEVERITY: Record<Severity, string> = {
  error: 'error',
  warning: 'warning',
  info: 'recommendation',
  style: 'recommendation',
};

/** A repository-relative path as a SARIF URI reference: each segment percent-encoded. */
export function sarifUri(file: string): string {
  return isAbsolute(file) ? pathToFileURL(file).href : file.split('/').map(encodeURIComponent).join('/');
}

/**
 * SARIF 2.1.0 for GitHub code scanning. Locations are relative to %SRCROOT% (the repository root);
 * columns are code points as shellcheck counts them. partialFingerprints are left to upload-sarif,
 * which computes them from the checked-out sources.
 */
export function toSarif(findings: readonly Finding[], tool: { version: string | undefined }): Log {
  const rules: ReportingDescriptor[] = [];
  const ruleIndex = new Map<string, number>();
  const sorted = [...findings].sort(compareFindings);
  const results: Result[] = sorted.map((f) => {
    let index = ruleIndex.get(f.code);
    if (index === undefined) {
      index = rules.length;
      ruleIndex.set(f.code, index);
      rules.push({
        id: f.code,
        name: f.code,
        shortDescription: { text: f.message },
        fullDescription: { text: f.message },
        helpUri: wikiUrl(f.code),
        help: { text: `See ${wikiUrl(f.code)}`, markdown: `See [${f.code}](${wikiUrl(f.code)}) on the ShellCheck wiki.` },
        defaultConfiguration: { level: SARIF_LEVEL[f.severity] },
        properties: { tags: ['shellcheck', 'shell'], 'problem.severity': PROBLEM_SEVERITY[f.severity] },
      });
    }
    const uri = sarifUri(f.file);
    return {
      ruleId: f.code,
      ruleIndex: index,
      level: SARIF_LEVEL[f.severity],
      message: { text: f.message },
      locations: [
        {
          physicalLocation: {
            artifactLocation: isAbsolute(f.file) ? { uri } : { uri, uriBaseId: '%SRCROOT%' },
            region: { startLine: f.line, startColumn: f.column, endLine: f.endLine, endColumn: f.endColumn },
          },
        },
      ],
    };
  });
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'ShellCheck',
            ...(tool.version ? { version: tool.version } : {}),
            informationUri: 'https://www.shellcheck.net',
            rules,
          },
        },
        columnKind: 'unicodeCodePoints',
        results,
      },
    ],
  };
}
