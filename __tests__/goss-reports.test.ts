import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  GossReportError,
  gossAnnotations,
  gossTestName,
  gossToJUnit,
  gossToMarkdown,
  gossToTap,
  parseGossReport,
  type GossReport,
} from '../src/reports/goss.js';

const FIXTURES = join(import.meta.dirname, 'fixtures/goss');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
// Both recorded from real goss 0.4.9 runs by fixtures/goss/record.sh.
const failing = parseGossReport(fixture('failing.json'));
const passing = parseGossReport(fixture('passing.json'));

interface ParsedCase {
  name: string;
  classname: string;
  time: string;
  failure?: { message: string; type: string; text: string };
  skipped: boolean;
}

/**
 * Parses JUnit XML with a real XML parser (Python's expat, in scripts/host-packages.sh's python3):
 * node has none, and a hand-written check would share the converter's blind spots.
 */
function parseJUnit(xml: string): { suites: Record<string, string>[]; cases: ParsedCase[] } {
  const script = `
import json, sys, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
suites = [dict(s.attrib) for s in root.iter('testsuite')]
cases = []
for c in root.iter('testcase'):
    f = c.find('failure')
    cases.append({**c.attrib, 'skipped': c.find('skipped') is not None,
                  'failure': None if f is None else {**f.attrib, 'text': f.text or ''}})
print(json.dumps({'root': root.tag, 'suites': suites, 'cases': cases}))
`;
  const out = JSON.parse(execFileSync('python3', ['-c', script], { input: xml, encoding: 'utf8' })) as {
    root: string;
    suites: Record<string, string>[];
    cases: (ParsedCase & { failure: ParsedCase['failure'] | null })[];
  };
  expect(out.root).toBe('testsuites');
  return { suites: out.suites, cases: out.cases.map((c) => ({ ...c, failure: c.failure ?? undefined })) };
}

describe('parseGossReport', () => {
  it('reads the summary of a real failing run', () => {
    expect(failing.summary).toMatchObject({ tests: 13, failed: 7, skipped: 2, passed: 4 });
    expect(failing.summary.durationSeconds).toBeGreaterThan(0);
    expect(failing.summary.durationSeconds).toBeLessThan(5);
  });

  it('turns matcher results into one-line expected and found values', () => {
    const byName = new Map(failing.tests.map((t) => [gossTestName(t), t]));
    const cases: [string, Partial<(typeof failing.tests)[number]>][] = [
      ['service nginx running', { outcome: 'failed', expected: 'true', found: 'false', error: undefined }],
      ['user root uid', { outcome: 'failed', expected: '1000', found: '0' }],
      [
        'file /etc/passwd contents',
        {
          outcome: 'failed',
          expected: 'patterns ["root:x:0:0","svc-app:x:"]',
          found: 'missing ["svc-app:x:"]',
          title: 'passwd lists the service account',
          meta: { owner: 'platform-team' },
        },
      ],
      ['http http://127.0.0.1:9/health status', { outcome: 'failed', expected: '', found: '' }],
      ['file /etc/hostname exists', { outcome: 'skipped', expected: '', found: '' }],
      ['file /etc/os-release exists', { outcome: 'passed', expected: 'true', found: 'true' }],
    ];
    for (const [name, want] of cases) expect(byName.get(name), name).toMatchObject(want);
    expect(byName.get('http http://127.0.0.1:9/health status')?.error).toMatch(/connection refused/);
  });

  it('counts outcomes that agree with the summary', () => {
    for (const report of [failing, passing]) {
      expect(report.tests.filter((t) => t.outcome === 'failed')).toHaveLength(report.summary.failed);
      expect(report.tests.filter((t) => t.outcome === 'skipped')).toHaveLength(report.summary.skipped);
      expect(report.tests).toHaveLength(report.summary.tests);
    }
  });

  it('reads goss 0.3 reports with flat expected/found lists', () => {
    const old = parseGossReport({
      results: [
        {
          'resource-type': 'Port',
          'resource-id': 'tcp:80',
          property: 'listening',
          result: 1,
          successful: false,
          skipped: false,
          expected: ['true'],
          found: ['false'],
          human: 'Expected\n    <bool>: false\nto equal\n    <bool>: true',
          duration: 1_500_000,
        },
      ],
      summary: { 'test-count': 1, 'failed-count': 1, 'total-duration': 2_000_000 },
    });
    expect(old.tests[0]).toMatchObject({ expected: 'true', found: 'false', durationSeconds: 0.0015 });
    expect(old.summary).toMatchObject({ tests: 1, failed: 1, skipped: 0, durationSeconds: 0.002 });
  });

  it.each([
    ['not JSON', 'Error: yaml: line 2: did not find expected key', /not JSON/],
    ['no results', '{"summary":{}}', /no "results" list/],
    ['a result without a type', '{"results":[{}],"summary":{}}', /#1 has no resource-type/],
  ])('rejects %s', (_what, input, message) => {
    expect(() => parseGossReport(input)).toThrow(GossReportError);
    expect(() => parseGossReport(input)).toThrow(message);
  });
});

describe('gossToJUnit', () => {
  it('is well-formed XML with a classname on every testcase', () => {
    const { suites, cases } = parseJUnit(gossToJUnit(failing));
    expect(suites).toEqual([expect.objectContaining({ name: 'goss', tests: '13', failures: '7', skipped: '2', errors: '0' })]);
    expect(cases).toHaveLength(13);
    for (const c of cases) expect(c.classname).toMatch(/^goss\.[a-z]+$/);
    expect(cases.filter((c) => c.failure)).toHaveLength(7);
    expect(cases.filter((c) => c.skipped)).toHaveLength(2);
  });

  it('escapes what goss passes through from the gossfile and command output', () => {
    const { cases } = parseJUnit(gossToJUnit(failing));
    const command = cases.find((c) => c.name === 'command echo "a <b> & c | d" exit-status');
    expect(command).toMatchObject({ classname: 'goss.command', failure: { message: 'expected 1, found 0' } });
    expect(command?.failure?.text).toContain('Command: echo "a <b> & c | d": exit-status:');
  });

  it('keeps control characters and newlines from breaking the file', () => {
    const hostile: GossReport = {
      tests: [
        {
          ...failing.tests.find((t) => t.outcome === 'failed')!,
          resourceId: 'printf "\u001b[31mred\u0000"',
          found: 'line one\nline two "quoted" \'single\'',
        },
      ],
      summary: { tests: 1, failed: 1, skipped: 0, passed: 0, durationSeconds: 0 },
    };
    const { cases } = parseJUnit(gossToJUnit(hostile));
    expect(cases[0].name).toContain('\uFFFD[31mred\uFFFD');
    expect(cases[0].failure?.message).toContain('line one\nline two "quoted" \'single\'');
  });

  it('has no failure or skipped element for an all-passing run', () => {
    const { cases } = parseJUnit(gossToJUnit(passing, { timestamp: new Date('2025-01-02T03:04:05.678Z') }));
    expect(cases.length).toBeGreaterThan(0);
    expect(cases.every((c) => !c.failure && !c.skipped)).toBe(true);
    expect(gossToJUnit(passing, { timestamp: new Date('2025-01-02T03:04:05.678Z') })).toContain(
      'timestamp="2025-01-02T03:04:05"',
    );
  });
});

describe('gossToTap', () => {
  const tap = gossToTap(failing);
  const lines = tap.split('\n');

  it('has a plan and one result line per test', () => {
    expect(lines.slice(0, 2)).toEqual(['TAP version 13', '1..13']);
    expect(lines.filter((l) => /^(not )?ok \d+ - /.test(l))).toHaveLength(13);
    expect(lines.filter((l) => l.startsWith('not ok '))).toHaveLength(7);
    expect(lines.filter((l) => / # SKIP$/.test(l))).toHaveLength(2);
  });

  it('explains each failure in a YAML block that parses', () => {
    const start = lines.findIndex((l) => l.startsWith('not ok') && l.includes('file /etc/passwd contents'));
    expect(lines[start + 1]).toBe('  ---');
    const end = lines.indexOf('  ...', start);
    const block = parseYaml(
      lines
        .slice(start + 2, end)
        .map((l) => l.slice(2))
        .join('\n'),
    ) as Record<string, unknown>;
    expect(block).toMatchObject({
      message: 'expected patterns ["root:x:0:0","svc-app:x:"], found missing ["svc-app:x:"]',
      severity: 'fail',
      found: 'missing ["svc-app:x:"]',
      meta: { owner: 'platform-team' },
    });
  });

  it('escapes # in descriptions so that it does not read as a directive', () => {
    const test = { ...failing.tests[0], outcome: 'passed' as const, resourceId: 'echo #1' };
    const out = gossToTap({ tests: [test], summary: { ...failing.summary, tests: 1 } });
    expect(out).toContain('ok 1 - command echo \\#1 exit-status\n');
  });
});

describe('gossToMarkdown', () => {
  it('lists failures first, then skips, then a count line, with passes folded away', () => {
    const md = gossToMarkdown(failing);
    const rows = md.split('\n').filter((l) => l.startsWith('| ❌') || l.startsWith('| ⏭️'));
    expect(rows).toHaveLength(9);
    expect(rows.slice(0, 7).every((r) => r.startsWith('| ❌'))).toBe(true);
    expect(md).toContain('| ❌ | service nginx | running | true | false |');
    expect(md).toContain('**7 of 13 tests failed**: 4 passed, 7 failed, 2 skipped');
    expect(md.indexOf('**7 of 13')).toBeLessThan(md.indexOf('<details>'));
    expect(md).toMatch(/<details>\n<summary>4 passed<\/summary>/);
  });

  it('keeps pipes and HTML in values inside their cell', () => {
    const md = gossToMarkdown(failing);
    expect(md).toContain('| ❌ | command echo "a &lt;b&gt; &amp; c \\| d" | exit-status | 1 | 0 |');
    for (const row of md.split('\n').filter((l) => l.startsWith('| ❌'))) {
      expect(row.replace(/\\\|/g, '').split('|')).toHaveLength(7);
    }
  });

  it('says all passed when nothing failed', () => {
    const md = gossToMarkdown(passing, { heading: 'goss on trixie' });
    expect(md.startsWith('### goss on trixie\n')).toBe(true);
    expect(md).not.toContain('| ❌');
    expect(md).toContain(`**All ${passing.summary.tests} tests passed**`);
  });
});

describe('gossAnnotations', () => {
  it('gives one pull-request annotation per failed test, on the gossfile', () => {
    const annotations = gossAnnotations(failing, 'tests/goss.yaml');
    expect(annotations).toHaveLength(7);
    expect(annotations).toContainEqual({
      title: 'goss: service nginx running',
      message: 'expected true, found false',
      file: 'tests/goss.yaml',
    });
    expect(annotations).toContainEqual(
      expect.objectContaining({
        title: 'goss: file /etc/passwd contents',
        message: 'passwd lists the service account: expected patterns ["root:x:0:0","svc-app:x:"], found missing ["svc-app:x:"]',
      }),
    );
    expect(annotations.find((a) => a.title.startsWith('goss: http'))?.message).toMatch(/^error: Get .*connection refused$/);
    expect(gossAnnotations(passing, 'goss.yaml')).toEqual([]);
  });
});
