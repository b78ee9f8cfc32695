import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LintianSeverity } from '../src/config.js';
import type { AnnotationProps, Reporter } from '../src/host/reporter.js';
import { annotateLintian, failingTags, lintianCounts, parseLintian } from '../src/package/lintian.js';

// Recorded: trixie's lintian (--display-info --pedantic) on the hello example's .changes.
const RECORDED = readFileSync(join(import.meta.dirname, 'fixtures', 'package', 'lintian-hello-trixie.txt'), 'utf8');

// The other line shapes lintian prints (severity codes, source/changes/buildinfo targets, lines that are not findings).
const MIXED = [
  'E: dvc-docdemo: copyright-not-using-common-license-for-gpl [usr/share/doc/dvc-docdemo/copyright]',
  'W: dvc-docdemo-helper: no-manual-page [usr/lib/dvc-docdemo/dvc-docdemo-helper]',
  'I: dvc-docdemo changes: backports-changes-missing',
  'P: dvc-docdemo source: no-dep5-copyright',
  'X: dvc-docdemo: some-experimental-tag',
  'O: dvc-docdemo: overridden-tag',
  'N: 1 tag overridden',
  'not a tag line',
  '',
].join('\n');

describe('parseLintian', () => {
  it('reads the recorded run', () => {
    expect(parseLintian(RECORDED)).toEqual([
      {
        severity: 'warning',
        package: 'hello-dvc',
        tag: 'no-manual-page',
        info: '[usr/bin/hello-dvc]',
        line: 'W: hello-dvc: no-manual-page [usr/bin/hello-dvc]',
      },
    ]);
  });

  it('reads E, W, I and P tags of packages, changes and source, and skips the rest', () => {
    expect(parseLintian(MIXED).map((t) => [t.severity, t.package, t.tag, t.info])).toEqual([
      ['error', 'dvc-docdemo', 'copyright-not-using-common-license-for-gpl', '[usr/share/doc/dvc-docdemo/copyright]'],
      ['warning', 'dvc-docdemo-helper', 'no-manual-page', '[usr/lib/dvc-docdemo/dvc-docdemo-helper]'],
      ['info', 'dvc-docdemo changes', 'backports-changes-missing', ''],
      ['pedantic', 'dvc-docdemo source', 'no-dep5-copyright', ''],
    ]);
  });
});

describe('failingTags', () => {
  const tags = parseLintian(MIXED);
  it.each<[LintianSeverity | 'never', number]>([
    ['error', 1],
    ['warning', 2],
    ['info', 3],
    ['pedantic', 4],
    ['never', 0],
  ])('lintian-fail-on %s fails on %i tags', (failOn, count) => {
    expect(failingTags(tags, failOn)).toHaveLength(count);
  });
});

describe('annotateLintian', () => {
  it('makes one annotation per tag, titled with the tag, at the matching level', () => {
    const calls: [string, string, AnnotationProps | undefined][] = [];
    const reporter = {
      error: (m: string, p?: AnnotationProps) => calls.push(['error', m, p]),
      warning: (m: string, p?: AnnotationProps) => calls.push(['warning', m, p]),
      notice: (m: string, p?: AnnotationProps) => calls.push(['notice', m, p]),
    } as unknown as Reporter;
    annotateLintian(reporter, parseLintian(MIXED));
    expect(calls).toEqual([
      [
        'error',
        'dvc-docdemo: copyright-not-using-common-license-for-gpl [usr/share/doc/dvc-docdemo/copyright]',
        { title: 'lintian copyright-not-using-common-license-for-gpl' },
      ],
      [
        'warning',
        'dvc-docdemo-helper: no-manual-page [usr/lib/dvc-docdemo/dvc-docdemo-helper]',
        { title: 'lintian no-manual-page' },
      ],
      ['notice', 'dvc-docdemo changes: backports-changes-missing', { title: 'lintian backports-changes-missing' }],
      ['notice', 'dvc-docdemo source: no-dep5-copyright', { title: 'lintian no-dep5-copyright' }],
    ]);
  });
});

describe('lintianCounts', () => {
  it.each([
    ['', 'no tags'],
    [RECORDED, '1 warning'],
    [MIXED, '1 error, 1 warning, 1 info, 1 pedantic'],
    [`${MIXED}\n${MIXED}`, '2 errors, 2 warnings, 2 info, 2 pedantic'],
  ])('%#', (text, counts) => {
    expect(lintianCounts(parseLintian(text))).toBe(counts);
  });
});
