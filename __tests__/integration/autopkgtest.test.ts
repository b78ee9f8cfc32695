import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliRun } from '../support/cli-run.js';
import { newScratchDirs, processesMentioning, scratchDirs } from '../support/leftovers.js';

// A package's DEP-8 tests in the booted guest, driven by Debian's autopkgtest (null server inside the VM):
// real package build, mmdebstrap image, QEMU under TCG here, autopkgtest from the mirror through the run's apt proxy.
const work = mkdtempSync(join(tmpdir(), 'dvc-autopkgtest-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the lifecycle and autopkgtest stages', () => {
  it("test the fixture's life cycle, then run its DEP-8 tests, in one booted VM: each verdict reported", async () => {
    const dir = join(work, 'out');
    const before = scratchDirs();
    const run = new CliRun(
      dir,
      [
        '--working-directory',
        '__tests__/fixtures/autopkgtest/project',
        '--installer',
        'mmdebstrap',
        '--install-profile',
        'fast',
        '--release',
        'bookworm',
        '--lifecycle',
        'true',
      ],
      40 * 60,
    );
    const status = await run.done;
    const out = run.out;
    expect(status, out.slice(-4000)).toBe(1);
    expect(processesMentioning(dir)).toEqual([]);
    expect(newScratchDirs(before)).toEqual([]);

    const result = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as {
      failureKind: string;
      error: string;
      autopkgtest: Record<string, number>;
      lifecycle: Record<string, unknown>;
      stages: { name: string; status: string; seconds: number }[];
    };
    // The figures of the note: what each stage took here.
    console.log(`autopkgtest fixture run: ${result.stages.map((s) => `${s.name} ${s.seconds}s`).join(', ')}`);
    expect(result.failureKind).toBe('test');
    // The first failure is the run's error; a test failure in one guest stage does not stop the next.
    expect(result.error).toMatch(/^lifecycle: the life cycle of dvc-dep8 failed: 2 path\(s\) left behind after the purge/);
    expect(result.autopkgtest).toEqual({ tests: 4, passed: 1, failed: 1, skipped: 2, flaky: 0 });
    expect(result.stages.map((s) => `${s.name}:${s.status}`)).toEqual([
      'accel:passed',
      'lint:passed',
      'package:passed',
      'install:passed',
      'boot:passed',
      'validate:passed',
      'lifecycle:failed',
      'autopkgtest:failed',
      'upgrade:skipped',
      'publish:passed',
    ]);
    // The life cycle: no archive version of dvc-dep8, so install, remove, purge; the postinst's state is left behind.
    expect(result.lifecycle).toEqual({
      passed: false,
      steps: ['install:0', 'remove:0', 'purge:0'],
      leftovers: 2,
      missing: 0,
      scriptErrors: 0,
    });
    expect(readFileSync(join(dir, 'lifecycle/leftovers.txt'), 'utf8')).toBe('/var/lib/dvc-dep8\n/var/lib/dvc-dep8/state\n');
    expect(readFileSync(join(dir, 'lifecycle/lifecycle.junit.xml'), 'utf8')).toContain(
      '<failure message="2 path(s) left behind">/var/lib/dvc-dep8\n/var/lib/dvc-dep8/state</failure>',
    );

    // validate, lifecycle and autopkgtest shared one login; the guest was powered off after the last guest stage.
    expect(out.match(/logged in on the serial console/g)).toHaveLength(1);
    expect(out).toMatch(/autopkgtest: powering the guest off\n.*autopkgtest: QEMU exited with status 0/);

    // autopkgtest's own summary and logs, and our reports, in the output directory.
    const a = join(dir, 'autopkgtest');
    for (const f of ['summary', 'log', 'fails-stderr', 'testinfo.json', 'autopkgtest.junit.xml', 'autopkgtest.md'])
      expect(existsSync(join(a, f)), f).toBe(true);
    const junit = readFileSync(join(a, 'autopkgtest.junit.xml'), 'utf8');
    expect(junit).toContain('<testsuite name="autopkgtest dvc-dep8 bookworm" tests="4" failures="1" errors="0" skipped="2">');
    expect(junit).toMatch(
      /<testcase name="fails" classname="autopkgtest.dvc-dep8">\s*<failure message="non-zero exit status 1">/,
    );
    expect(junit).toMatch(/<testcase name="skips"[^>]*>\s*<skipped message="exit status 77 and marked as skippable"\/>/);
    expect(junit).toMatch(
      /<testcase name="reboots"[^>]*>\s*<skipped message="Test restriction &quot;needs-reboot&quot; requires testbed capability &quot;reboot&quot;"\/>/,
    );
    expect(junit).toMatch(/<testcase name="passes" classname="autopkgtest.dvc-dep8"\/>/);
    // The failed test is an annotation on the tests' control file, and a line in the job summary.
    expect(out).toMatch(/error: __tests__\/fixtures\/autopkgtest\/project\/debian\/tests\/control: autopkgtest: fails:/);
    const summary = readFileSync(join(dir, 'summary.md'), 'utf8');
    expect(summary).toContain('autopkgtest **1/4 passed** (1 failed, 2 skipped)');
    expect(summary).toContain('| fails | ❌ fail | non-zero exit status 1 |');
  });
});
