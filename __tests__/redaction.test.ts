import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConsoleReporter } from '../src/host/reporter.js';
import type { RunResult } from '../src/results.js';
import { cellName, imageArtifactName, reportsArtifactName } from '../src/publish/naming.js';
import { renderRunSummary } from '../src/reports/summary.js';

// A real run's result.json: grml-debootstrap testing itself, whose CI logs in with the password "grml".
const passed = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures/summary/passed.result.json'), 'utf8')) as RunResult;

function reporterWith(secret: string): ConsoleReporter {
  const r = new ConsoleReporter(() => undefined);
  r.setSecret(secret);
  return r;
}

describe('redaction of the test VM password', () => {
  it('leaves names, paths and versions that contain a four-letter password intact', () => {
    const r = reporterWith('grml');
    for (const text of [
      'grml-debootstrap 0.129',
      'I: installing the grml-debootstrap built by this run',
      '/home/runner/work/grml-debootstrap/grml-debootstrap/tests/goss.yaml',
      'debian-vm-ci-grml-trixie-on-trixie-bios-amd64-grml-debootstrap-reports',
      'grml_2026.deb',
      'https://grml.org/',
    ]) {
      expect(r.redact(text)).toBe(text);
    }
  });

  it('hides the password where it stands as a value: command lines, key=value, quoted, chpasswd lines', () => {
    const r = reporterWith('grml');
    expect(r.redact('grml-debootstrap --password grml --hostname debian')).toBe(
      'grml-debootstrap --password *** --hostname debian',
    );
    expect(r.redact('--password=grml')).toBe('--password=***');
    expect(r.redact(`ROOTPASSWORD='grml'`)).toBe(`ROOTPASSWORD='***'`);
    expect(r.redact('root:grml')).toBe('root:***');
    expect(r.redact('grml')).toBe('***');
  });

  it('hides a generated password (base64url, with - and _) wherever it appears as a value', () => {
    const secret = 'Zx-9_aQ3kLmN0pR7sT2uVw4y';
    const r = reporterWith(secret);
    expect(r.redact(`echo root:${secret} | chpasswd`)).toBe('echo root:*** | chpasswd');
    expect(r.redact(`password ${secret}\n`)).toBe('password ***\n');
  });

  it("keeps the job summary, result.json and artifact names of a run with password 'grml' intact", () => {
    const r = reporterWith('grml');
    const result: RunResult = {
      ...passed,
      config: { ...passed.config, artifactPrefix: 'grml-ci', installer: 'grml-debootstrap' },
    };
    const summary = renderRunSummary(result);
    expect(summary).toContain('grml-debootstrap');
    expect(r.redact(summary)).toBe(summary);
    const json = r.redactJson(result);
    expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(result)));
    const cell = {
      artifactPrefix: 'grml',
      release: 'trixie',
      hostRelease: 'trixie',
      firmware: 'bios' as const,
      architecture: 'amd64' as const,
      installer: 'grml-debootstrap' as const,
    };
    for (const name of [cellName(cell), reportsArtifactName(cell), imageArtifactName(cell)]) expect(r.redact(name)).toBe(name);
  });

  it.each(['1', '0', 'true', 'null', '"', '\\', '2.5', ':', ',', '{', 'passed', 'exitCode', ' ', 'a"b\\c'])(
    'writes valid JSON whatever the password (%j), and the password never appears in a string value',
    (secret) => {
      const r = reporterWith(secret);
      const value = {
        exitCode: 1,
        status: 'passed',
        seconds: 2.5,
        ok: true,
        none: null,
        nested: [{ line: `--password ${secret} --hostname x` }],
      };
      const json = r.redactJson(value);
      const back = JSON.parse(json) as typeof value;
      expect(back.exitCode).toBe(1);
      expect(back.seconds).toBe(2.5);
      expect(back.ok).toBe(true);
      expect(back.none).toBe(null);
      expect(back.nested[0].line).toBe('--password *** --hostname x');
    },
  );
});
