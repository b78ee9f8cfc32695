import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliRun, stage } from '../support/cli-run.js';
import { newScratchDirs, processesMentioning, scratchDirs } from '../support/leftovers.js';

// Each case runs the real pipeline (mmdebstrap image, QEMU under TCG, goss in the guest), injects one
// fault, and checks the diagnosis, the exit status, that reports are kept and that nothing is left behind.
const work = mkdtempSync(join(tmpdir(), 'dvc-faults-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let n = 0;
const figures: string[] = [];
afterAll(() => console.log(`fault figures:\n${figures.join('\n')}`));

const FAST = [
  '--working-directory',
  'examples/hello',
  '--installer',
  'mmdebstrap',
  '--lint',
  'false',
  '--build-package',
  'false',
  '--upload-image',
  'never',
];

/**
 * install-profile fast (apt variant, no recommends) by default: these cases test how faults are diagnosed, not
 * what the installer installs; the image-size case takes the default profile, whose size it is about.
 */
function start(args: string[], profile: 'fast' | 'default' = 'fast'): CliRun {
  n += 1;
  return new CliRun(join(work, `out-${n}`), [...FAST, '--install-profile', profile, ...args]);
}

function nothingLeft(run: CliRun, before: string[]): void {
  expect(processesMentioning(run.outputDir)).toEqual([]);
  expect(newScratchDirs(before)).toEqual([]);
}

function gossfile(name: string, text: string): string {
  const f = join(work, name);
  writeFileSync(f, text);
  return f;
}

describe('faults', () => {
  it('mirror unreachable: retries, then an infrastructure error naming the mirror', async () => {
    const before = scratchDirs();
    const run = start(['--mirror', 'http://127.0.0.1:9/debian', '--validate', 'false']);
    const code = await run.done;
    const result = run.result();
    expect(code, run.out.slice(-2000)).toBe(3);
    expect(stage(result, 'install')?.error).toMatch(
      /^the Debian mirror http:\/\/127\.0\.0\.1:9\/debian could not be reached through the apt proxy: http:\/\/127\.0\.0\.1:9: ECONNREFUSED/,
    );
    figures.push(`mirror unreachable: diagnosed after ${((performance.now() - run.started) / 1000).toFixed(1)}s`);
    nothingLeft(run, before);
  });

  it('image too small for the release: a test failure naming image-size', async () => {
    const before = scratchDirs();
    const run = start(['--image-size', '300M', '--validate', 'false'], 'default');
    const code = await run.done;
    expect(code, run.out.slice(-2000)).toBe(1);
    expect(stage(run.result(), 'install')?.error).toBe('image-size 300M is too small for this trixie system');
    nothingLeft(run, before);
  });

  it('a gossfile that does not parse (goss exit 78) is told apart from failing tests', async () => {
    const before = scratchDirs();
    const run = start(['--gossfile', gossfile('broken.yaml', 'file:\n  /etc/hostname: [exists\n')]);
    const code = await run.done;
    expect(code, run.out.slice(-2000)).toBe(1);
    expect(stage(run.result(), 'validate')?.error).toMatch(/^goss could not load .*broken\.yaml \(exit 78\)/);
    expect(existsSync(join(run.outputDir, 'serial.log'))).toBe(true);
    expect(existsSync(join(run.outputDir, 'diagnostics/journal.txt'))).toBe(true);
    nothingLeft(run, before);
  });

  it('failing goss tests: exit 1, one annotation per failed test, JUnit with the failure', async () => {
    const before = scratchDirs();
    const run = start([
      '--gossfile',
      gossfile(
        'failing.yaml',
        'file:\n  /etc/debian-vm-ci-missing:\n    exists: true\nservice:\n  systemd-journald:\n    running: true\n',
      ),
    ]);
    const code = await run.done;
    const result = run.result();
    expect(code, run.out.slice(-2000)).toBe(1);
    expect(stage(result, 'validate')?.error).toBe('1 of 2 goss tests failed');
    expect(result.goss).toEqual({ tests: 2, failures: 1, skipped: 0 });
    expect(run.out).toMatch(/error: \S*failing\.yaml: goss: file \/etc\/debian-vm-ci-missing exists: expected true, found false/);
    expect(readFileSync(join(run.outputDir, 'goss/goss.junit.xml'), 'utf8')).toContain('<failure');
    expect(readFileSync(join(run.outputDir, 'summary.md'), 'utf8')).toContain('/etc/debian-vm-ci-missing');
    nothingLeft(run, before);
  });

  it('SIGTERM during boot: cancelled, reports and serial log written, nothing left running', async () => {
    const before = scratchDirs();
    const run = start([]);
    await run.waitFor(/boot: QEMU /, 600);
    await run.waitFor(/boot: [\d.]+s kernel/, 300);
    const t0 = performance.now();
    run.child.kill('SIGTERM');
    const code = await run.done;
    figures.push(`SIGTERM mid-boot: exited ${((performance.now() - t0) / 1000).toFixed(1)}s after the signal`);
    expect(code).toBe(3);
    const result = run.result();
    expect(stage(result, 'boot')?.error).toMatch(/^cancelled after/);
    expect(stage(result, 'validate')?.status).toBe('not-run');
    expect(readFileSync(join(run.outputDir, 'serial.log'), 'utf8')).toContain('Linux version');
    nothingLeft(run, before);
  });

  it('QEMU killed from outside during validate: an infrastructure error that says so', async () => {
    const before = scratchDirs();
    const run = start([]);
    await run.waitFor(/validate: goss /, 900);
    const qemu = processesMentioning(run.outputDir).find((p) => p.includes('qemu-system'));
    expect(qemu).toBeDefined();
    const t0 = performance.now();
    process.kill(Number(qemu?.split(':')[0]), 'SIGKILL');
    const code = await run.done;
    figures.push(`QEMU killed mid-validate: diagnosed ${((performance.now() - t0) / 1000).toFixed(1)}s after the kill`);
    expect(code).toBe(3);
    expect(stage(run.result(), 'validate')?.error).toMatch(/^running goss in the guest failed: QEMU exited \(status \d+\)/);
    nothingLeft(run, before);
  });
});
