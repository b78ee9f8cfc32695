import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.js';
import { hostArchitecture } from '../../src/debian.js';
import { resolveGoss } from '../../src/goss/binary.js';
import { classifyGossRun, gossValidateArgv, type GossRunResult } from '../../src/goss/command.js';
import { HostExec } from '../../src/host/exec.js';
import { hostDebianMirror } from '../../src/host/mirror.js';
import { ConsoleReporter } from '../../src/host/reporter.js';
import { gossTestName, gossToJUnit, gossToTap, parseGossReport } from '../../src/reports/goss.js';
import { ResourceTracker } from '../../src/state.js';

// Real goss against the fixture gossfiles, driven the way the validate stage drives it.
const FIXTURES = join(import.meta.dirname, '../fixtures/goss');
const root = mkdtempSync(join(tmpdir(), 'goss-reports-it-'));
const reporter = new ConsoleReporter(() => {});
const resources = new ResourceTracker(join(root, 'resources.json'));
const exec = new HostExec(reporter, resources);
let goss: string;

async function validate(gossfile: string, extra: { vars?: string; retryTimeout?: number } = {}): Promise<GossRunResult> {
  const argv = gossValidateArgv({ goss, gossfile: join(FIXTURES, gossfile), ...extra });
  const { exitCode, stdout, stderr } = await exec.run(argv, { stage: 'validate', check: false, timeoutSeconds: 120 });
  return classifyGossRun(exitCode, stdout, stderr);
}

beforeAll(async () => {
  const mirror = process.env.DEBIAN_VM_CI_MIRROR || hostDebianMirror() || '';
  expect(mirror, 'no Debian mirror: run on a Debian host or set DEBIAN_VM_CI_MIRROR').toMatch(/^https?:\/\//);
  // Nothing listens on a just-closed port: resolveGoss falls back to Debian's goss, as on a host without GitHub.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const config = {
    architecture: hostArchitecture(),
    release: 'trixie',
    mirror,
    gossVersion: '0.4.9',
    gossPath: '',
    gossDownloadUrl: `http://127.0.0.1:${port}/{version}/goss-linux-{arch}`,
  } as Config;
  const deps = { exec, reporter, resources, env: {}, github: undefined, cacheDir: join(root, 'cache') };
  goss = (await resolveGoss(config, deps)).path;
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('real goss runs', () => {
  it('all passing', async () => {
    const result = await validate('passing.goss.yaml');
    expect(result).toMatchObject({ kind: 'passed', attempts: 1 });
  });

  it('failures, skips and an error, reported like the recorded fixture', async () => {
    const result = await validate('failing.goss.yaml');
    expect(result.kind).toBe('failed');
    if (result.kind !== 'failed') return;
    const recorded = parseGossReport(readFileSync(join(FIXTURES, 'failing.json'), 'utf8'));
    // Sorted output (--format-options sort): the same tests in the same order as when recorded.
    expect(result.report.tests.map(gossTestName)).toEqual(recorded.tests.map(gossTestName));
    const outcome = (name: string): string | undefined => result.report.tests.find((t) => gossTestName(t) === name)?.outcome;
    // Outcomes that do not depend on what the host has installed.
    expect(outcome('file /nonexistent/file exists')).toBe('failed');
    expect(outcome('file /nonexistent/file mode')).toBe('skipped');
    expect(outcome('file /etc/hostname exists')).toBe('skipped');
    expect(outcome('user root uid')).toBe('failed');
    expect(outcome('http http://127.0.0.1:9/health status')).toBe('failed');
    expect(outcome('file /etc/passwd contents')).toBe('failed');

    const xml = join(root, 'junit.xml');
    writeFileSync(xml, gossToJUnit(result.report));
    const parsed = execFileSync(
      'python3',
      ['-c', 'import sys, xml.etree.ElementTree as ET; print(sum(1 for _ in ET.parse(sys.argv[1]).iter("testcase")))', xml],
      { encoding: 'utf8' },
    );
    expect(Number(parsed)).toBe(result.report.tests.length);
    expect(gossToTap(result.report)).toContain(`1..${result.report.tests.length}\n`);
  });

  it('an unparsable gossfile is a load error', async () => {
    const result = await validate('unparsable.goss.yaml');
    expect(result).toMatchObject({ kind: 'load-error' });
    if (result.kind === 'load-error') expect(result.message).toMatch(/yaml: line \d+/);
  });

  it('retries until a late file appears and reports only the final attempt', async () => {
    const marker = join(root, 'late-marker');
    const vars = join(root, 'vars-late.yaml');
    writeFileSync(vars, `marker: ${marker}\n`);
    const appear = setTimeout(() => writeFileSync(marker, ''), 3000);
    try {
      const result = await validate('retry.goss.yaml', { vars, retryTimeout: 20 });
      expect(result).toMatchObject({ kind: 'passed' });
      if (result.kind !== 'passed') return;
      expect(result.attempts).toBeGreaterThanOrEqual(3);
      expect(result.report.summary).toMatchObject({ tests: 2, failed: 0 });
    } finally {
      clearTimeout(appear);
    }
  });

  it("gives up after the retry timeout with the last attempt's failures", async () => {
    const vars = join(root, 'vars-never.yaml');
    writeFileSync(vars, `marker: ${join(root, 'never-created')}\n`);
    const result = await validate('retry.goss.yaml', { vars, retryTimeout: 2 });
    expect(result).toMatchObject({ kind: 'failed', retryTimedOut: true });
    if (result.kind === 'failed') {
      expect(result.attempts).toBeGreaterThanOrEqual(2);
      expect(result.report.summary).toMatchObject({ tests: 2, failed: 1 });
    }
  });
});
