import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import {
  annotationFor,
  compareFindings,
  countBySeverity,
  describeCounts,
  isAtLeast,
  json1Report,
  Json1FormatError,
  lintMarkdown,
  parseJson1,
  repositoryPath,
  sarifUri,
  summaryLine,
  toFindings,
  toSarif,
  type Finding,
  type Severity,
} from '../src/reports/shellcheck.js';

/**
 * The SARIF 2.1.0 schema is draft-04: Ajv 8 reads it once `id` is `$id` and the draft-04 `$schema` is gone.
 * unicodeRegExp: false because the schema's `language` pattern has a stray `]` that only non-unicode regexes accept.
 */
function sarifValidator(): ValidateFunction {
  const require = createRequire(import.meta.url);
  const schemaPath = require.resolve('@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json');
  const { $schema: _draft04, id, ...schema } = JSON.parse(readFileSync(schemaPath, 'utf8')) as Record<string, unknown>;
  const ajv = new Ajv({ strict: false, allErrors: true, unicodeRegExp: false });
  // ajv-formats is CommonJS: under NodeNext its function is the `default` of the module object.
  addFormats.default(ajv);
  return ajv.compile({ ...schema, $id: id as string });
}

// Recorded from `shellcheck --format=json1 t.sh` (0.9.0), run in the script's directory.
const RECORDED = JSON.stringify({
  comments: [
    {
      file: 't.sh',
      line: 2,
      endLine: 2,
      column: 2,
      endColumn: 7,
      level: 'warning',
      code: 2164,
      message: "Use 'cd ... || exit' or 'cd ... || return' in case cd fails.",
      fix: {
        replacements: [
          { column: 7, endColumn: 7, endLine: 2, insertionPoint: 'beforeStart', line: 2, precedence: 5, replacement: ' || exit' },
        ],
      },
    },
    {
      file: 't.sh',
      line: 2,
      endLine: 2,
      column: 5,
      endColumn: 7,
      level: 'info',
      code: 2086,
      message: 'Double quote to prevent globbing and word splitting.',
      fix: null,
    },
    {
      file: 't.sh',
      line: 4,
      endLine: 4,
      column: 1,
      endColumn: 4,
      level: 'warning',
      code: 2034,
      message: 'foo appears unused. Verify use (or export if used externally).',
      fix: null,
    },
  ],
});

const finding = (over: Partial<Finding> = {}): Finding => ({
  file: 'scripts/build.sh',
  line: 3,
  column: 5,
  endLine: 3,
  endColumn: 7,
  severity: 'info',
  code: 'SC2086',
  message: 'Double quote to prevent globbing and word splitting.',
  ...over,
});

describe('parseJson1', () => {
  it('reads recorded shellcheck output, keeping fields it does not interpret', () => {
    const comments = parseJson1(RECORDED);
    expect(comments.map((c) => [c.file, c.line, c.column, c.level, c.code])).toEqual([
      ['t.sh', 2, 2, 'warning', 2164],
      ['t.sh', 2, 5, 'info', 2086],
      ['t.sh', 4, 1, 'warning', 2034],
    ]);
    expect(comments[0].fix).toBeTruthy();
  });

  it('reads "no findings"', () => {
    expect(parseJson1('{"comments":[]}')).toEqual([]);
  });

  const comment = { file: 'a.sh', line: 1, endLine: 1, column: 1, endColumn: 2, level: 'error', code: 1000, message: 'm' };
  it.each([
    ['empty output', '', /not JSON/],
    ['a crash message', 'shellcheck: internal error\n', /not JSON/],
    ['--format=json (a bare array)', '[]', /no "comments" array/],
    ['null', 'null', /no "comments" array/],
    ['a comment that is not an object', '{"comments":[1]}', /comment 0 is not an object/],
    ['a missing file', JSON.stringify({ comments: [{ ...comment, file: undefined }] }), /has no file/],
    ['a fractional line', JSON.stringify({ comments: [{ ...comment, line: 1.5 }] }), /lacks integer/],
    ['a code as string', JSON.stringify({ comments: [{ ...comment, code: 'SC1000' }] }), /lacks integer/],
    ['an unknown level', JSON.stringify({ comments: [{ ...comment, level: 'fatal' }] }), /unknown level "fatal"/],
    ['a missing message', JSON.stringify({ comments: [{ ...comment, message: 7 }] }), /has no message/],
  ])('rejects %s', (_name, stdout, message) => {
    expect(() => parseJson1(stdout)).toThrow(Json1FormatError);
    expect(() => parseJson1(stdout)).toThrow(message);
  });
});

describe('repositoryPath', () => {
  it.each([
    ['build.sh', '/repo', '/repo', 'build.sh'],
    ['bin/deploy', '/repo/project', '/repo', 'project/bin/deploy'],
    ['./bin/deploy', '/repo/project', '/repo', 'project/bin/deploy'],
    ['../shared/lib.sh', '/repo/project', '/repo', 'shared/lib.sh'],
    ['../../elsewhere/x.sh', '/repo/project', '/repo', '/elsewhere/x.sh'],
    ['/abs/y.sh', '/repo', '/repo', '/abs/y.sh'],
  ])('%s from %s under %s -> %s', (file, cwd, repositoryRoot, expected) => {
    expect(repositoryPath(file, { cwd, repositoryRoot })).toBe(expected);
  });
});

describe('toFindings and json1Report', () => {
  const base = { cwd: '/repo/project', repositoryRoot: '/repo' };
  it('turns json1 comments into repository-relative findings with SC codes', () => {
    expect(toFindings(parseJson1(RECORDED), base)[1]).toEqual({
      file: 'project/t.sh',
      line: 2,
      column: 5,
      endLine: 2,
      endColumn: 7,
      severity: 'info',
      code: 'SC2086',
      message: 'Double quote to prevent globbing and word splitting.',
    });
  });

  it('keeps shellcheck json1 as it is, with only the file rewritten', () => {
    const comments = parseJson1(RECORDED);
    const report = json1Report(comments, base);
    expect(report.comments.map((c) => c.file)).toEqual(['project/t.sh', 'project/t.sh', 'project/t.sh']);
    expect(report.comments.map(({ file: _file, ...rest }) => rest)).toEqual(comments.map(({ file: _file, ...rest }) => rest));
  });
});

describe('annotationFor', () => {
  it.each<[Severity, 'error' | 'warning' | 'notice']>([
    ['error', 'error'],
    ['warning', 'warning'],
    ['info', 'notice'],
    ['style', 'notice'],
  ])('a %s finding becomes a %s annotation', (severity, kind) => {
    expect(annotationFor(finding({ severity })).kind).toBe(kind);
  });

  it('titles the annotation with code and severity, links the wiki, and points at file, line and columns', () => {
    expect(annotationFor(finding())).toEqual({
      kind: 'notice',
      message: 'Double quote to prevent globbing and word splitting. See https://www.shellcheck.net/wiki/SC2086',
      props: { title: 'SC2086 (info)', file: 'scripts/build.sh', startLine: 3, endLine: 3, startColumn: 5, endColumn: 7 },
    });
  });

  it('drops columns for a region over several lines (GitHub rejects them there)', () => {
    expect(annotationFor(finding({ line: 4, endLine: 9, column: 1, endColumn: 3 })).props).toEqual({
      title: 'SC2086 (info)',
      file: 'scripts/build.sh',
      startLine: 4,
      endLine: 9,
    });
  });

  it('names no file for a finding outside the repository (GitHub could not place it)', () => {
    expect(annotationFor(finding({ file: '/elsewhere/x.sh' })).props.file).toBeUndefined();
  });
});

describe('counting and policy', () => {
  const findings = [
    finding({ severity: 'error' }),
    finding({ severity: 'warning' }),
    finding({ severity: 'warning' }),
    finding({ severity: 'style' }),
  ];

  it('counts by severity', () => {
    expect(countBySeverity(findings)).toEqual({ error: 1, warning: 2, info: 0, style: 1 });
  });

  it.each<[Severity, Severity | 'never', boolean]>([
    ['error', 'error', true],
    ['warning', 'error', false],
    ['error', 'warning', true],
    ['warning', 'warning', true],
    ['info', 'warning', false],
    ['info', 'info', true],
    ['style', 'info', false],
    ['style', 'style', true],
    ['error', 'style', true],
    ['error', 'never', false],
    ['style', 'never', false],
  ])('isAtLeast(%s, %s) -> %s', (severity, threshold, expected) => {
    expect(isAtLeast(severity, threshold)).toBe(expected);
  });

  it.each([
    [12, { error: 1, warning: 2, info: 0, style: 0 }, '12 scripts, 3 findings: 1 error, 2 warnings'],
    [1, { error: 0, warning: 0, info: 0, style: 0 }, '1 script, 0 findings'],
    [2, { error: 0, warning: 1, info: 3, style: 1 }, '2 scripts, 5 findings: 1 warning, 3 info, 1 style'],
    [0, { error: 0, warning: 0, info: 0, style: 0 }, '0 scripts, 0 findings'],
    [3, { error: 2, warning: 0, info: 0, style: 0 }, '3 scripts, 2 findings: 2 errors'],
  ])('summaryLine(%d, %j) -> %s', (scripts, counts, expected) => {
    expect(summaryLine(scripts, counts)).toBe(expected);
  });

  it('describeCounts leaves out empty severities', () => {
    expect(describeCounts({ error: 0, warning: 0, info: 1, style: 0 })).toBe('1 info');
  });
});

describe('compareFindings', () => {
  it('orders by file, line, column, code', () => {
    const sorted = [
      finding({ file: 'b.sh', line: 1 }),
      finding({ file: 'a.sh', line: 2, column: 9 }),
      finding({ file: 'a.sh', line: 2, column: 1, code: 'SC2164' }),
      finding({ file: 'a.sh', line: 2, column: 1, code: 'SC2086' }),
    ].sort(compareFindings);
    expect(sorted.map((f) => `${f.file}:${f.line}:${f.column} ${f.code}`)).toEqual([
      'a.sh:2:1 SC2086',
      'a.sh:2:1 SC2164',
      'a.sh:2:9 SC2086',
      'b.sh:1:5 SC2086',
    ]);
  });
});

describe('lintMarkdown', () => {
  const reportFiles = ['lint/shellcheck.sarif', 'lint/shellcheck.json'];

  it('counts findings per file and severity, with totals, the policy and the scripts checked', () => {
    const markdown = lintMarkdown({
      scripts: ['a.sh', 'b|c.sh', 'clean.sh'],
      findings: [
        finding({ file: 'b|c.sh', severity: 'style' }),
        finding({ file: 'a.sh', severity: 'error' }),
        finding({ file: 'a.sh', severity: 'warning' }),
        finding({ file: 'a.sh', severity: 'warning' }),
      ],
      failOn: 'warning',
      reportFiles,
    });
    expect(markdown.split('\n').slice(0, 9)).toEqual([
      '### ShellCheck: 3 scripts, 4 findings: 1 error, 2 warnings, 1 style',
      '',
      '| file | error | warning | info | style |',
      '| --- | ---: | ---: | ---: | ---: |',
      '| `a.sh` | 1 | 2 | 0 | 0 |',
      '| `b\\|c.sh` | 0 | 0 | 0 | 1 |',
      '| **total** | **1** | **2** | **0** | **1** |',
      '',
      'Findings of severity warning or worse fail the run (lint-fail-on: warning): 3 do.',
    ]);
    expect(markdown).toContain('<details><summary>3 scripts checked</summary>');
    expect(markdown).toContain('- `clean.sh`');
    expect(markdown).not.toContain('GitHub shows only');
  });

  it('has no table without findings and says when findings cannot fail the run', () => {
    const markdown = lintMarkdown({ scripts: ['a.sh'], findings: [], failOn: 'never', reportFiles });
    expect(markdown).not.toContain('| file |');
    expect(markdown).toContain('Findings do not fail the run (lint-fail-on: never).');
  });

  it('points at the report files when GitHub will hide annotations (more than 10 of a kind)', () => {
    const findings = Array.from({ length: 11 }, (_, i) => finding({ line: i + 1, severity: i % 2 ? 'info' : 'style' }));
    expect(lintMarkdown({ scripts: ['scripts/build.sh'], findings, failOn: 'error', reportFiles })).toContain(
      'GitHub shows only 10 annotations of each kind per step; every finding is in lint/shellcheck.sarif and lint/shellcheck.json.',
    );
  });
});

describe('toSarif', () => {
  const validate = sarifValidator();
  const findings = [
    finding({
      file: 'project/my scripts/build.sh',
      severity: 'warning',
      code: 'SC2164',
      message: 'Use cd ... || exit',
      column: 1,
    }),
    finding({ file: 'project/my scripts/build.sh' }),
    finding({ file: 'project/bin/deploy', line: 7, severity: 'error', code: 'SC1037', message: 'Braces are required' }),
    finding({ file: 'project/bin/deploy', line: 9 }),
    finding({ file: 'project/long.sh', line: 2, endLine: 5, severity: 'style', code: 'SC2006', message: 'Use $(...)' }),
  ];
  const log = toSarif(findings, { version: '0.9.0' });

  it('is valid SARIF 2.1.0', () => {
    expect(validate(log), JSON.stringify(validate.errors, null, 2)).toBe(true);
    expect(validate(toSarif([], { version: undefined })), JSON.stringify(validate.errors)).toBe(true);
  });

  it('the validator does reject broken SARIF (so the check above can fail)', () => {
    const broken = structuredClone(log);
    (broken.runs[0].results![0] as { level: string }).level = 'fatal';
    expect(validate(broken)).toBe(false);
    expect(validate({ version: '2.1.0' })).toBe(false);
  });

  it('names ShellCheck with its version and one rule per code, with a help link', () => {
    const driver = log.runs[0].tool.driver;
    expect(driver.name).toBe('ShellCheck');
    expect(driver.version).toBe('0.9.0');
    expect(driver.rules?.map((r) => [r.id, r.helpUri, r.defaultConfiguration?.level])).toEqual([
      ['SC1037', 'https://www.shellcheck.net/wiki/SC1037', 'error'],
      ['SC2086', 'https://www.shellcheck.net/wiki/SC2086', 'note'],
      ['SC2006', 'https://www.shellcheck.net/wiki/SC2006', 'note'],
      ['SC2164', 'https://www.shellcheck.net/wiki/SC2164', 'warning'],
    ]);
  });

  it('has one result per finding, located relative to %SRCROOT% with URI-encoded paths', () => {
    const results = log.runs[0].results ?? [];
    const rules = log.runs[0].tool.driver.rules ?? [];
    expect(
      results.map((r) => {
        const location = r.locations?.[0].physicalLocation;
        return [
          r.ruleId,
          rules[r.ruleIndex ?? -1]?.id,
          r.level,
          location?.artifactLocation?.uri,
          location?.artifactLocation?.uriBaseId,
          location?.region?.startLine,
          location?.region?.startColumn,
          location?.region?.endLine,
          location?.region?.endColumn,
        ];
      }),
    ).toEqual([
      ['SC1037', 'SC1037', 'error', 'project/bin/deploy', '%SRCROOT%', 7, 5, 3, 7],
      ['SC2086', 'SC2086', 'note', 'project/bin/deploy', '%SRCROOT%', 9, 5, 3, 7],
      ['SC2006', 'SC2006', 'note', 'project/long.sh', '%SRCROOT%', 2, 5, 5, 7],
      ['SC2164', 'SC2164', 'warning', 'project/my%20scripts/build.sh', '%SRCROOT%', 3, 1, 3, 7],
      ['SC2086', 'SC2086', 'note', 'project/my%20scripts/build.sh', '%SRCROOT%', 3, 5, 3, 7],
    ]);
    expect(log.runs[0].columnKind).toBe('unicodeCodePoints');
  });

  it.each([
    ['a/b.sh', 'a/b.sh'],
    ['a b/c#d.sh', 'a%20b/c%23d.sh'],
    ['/outside/x.sh', 'file:///outside/x.sh'],
  ])('sarifUri(%s) -> %s', (file, uri) => {
    expect(sarifUri(file)).toBe(uri);
  });

  it('gives a file outside the repository an absolute file: URI without a base', () => {
    const outside = toSarif([finding({ file: '/elsewhere/x.sh' })], { version: '0.9.0' });
    expect(outside.runs[0].results?.[0].locations?.[0].physicalLocation?.artifactLocation).toEqual({
      uri: 'file:///elsewhere/x.sh',
    });
    expect(validate(outside)).toBe(true);
  });
});
