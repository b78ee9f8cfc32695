import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/context.js';
import { HostExec } from '../../src/host/exec.js';
import { ConsoleReporter } from '../../src/host/reporter.js';
import { probeKvm, runProbeGuest } from '../../src/stages/accel.js';
import { ResourceTracker } from '../../src/state.js';

const dir = mkdtempSync(join(tmpdir(), 'dvc-accel-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function deps(): Deps {
  const reporter = new ConsoleReporter(() => undefined);
  const resources = new ResourceTracker(join(dir, 'resources.json'));
  return { exec: new HostExec(reporter, resources), reporter, resources, env: process.env, github: undefined, cacheDir: dir };
}

describe('the KVM probe on this machine', () => {
  for (const [arch, qemu] of [
    ['amd64', 'qemu-system-x86_64'],
    ['arm64', 'qemu-system-aarch64'],
  ] as const) {
    it(`${arch}: runs the probe guest to its end under TCG and times its memory work (proves the payload itself)`, async () => {
      const run = await runProbeGuest(deps(), { arch, qemu, accel: 'tcg', deadlineSeconds: 30 });
      expect(run).toMatchObject({ completed: true, reason: 'the probe guest finished' });
      expect(run.workSeconds).toBeGreaterThan(0);
      expect(run.workSeconds).toBeLessThan(run.seconds);
    });
  }

  it('arm64: a probe whose memory work faults (too little RAM) is caught at the deadline, past its MMU step', async () => {
    // With 64 MiB the copy's destination (RAM + 48 to 80 MiB) is not memory: the guest takes an abort it has
    // no vector for and never finishes, the stand-in for a KVM that crawls after the guest's MMU is on.
    const run = await runProbeGuest(deps(), {
      arch: 'arm64',
      qemu: 'qemu-system-aarch64',
      accel: 'tcg',
      deadlineSeconds: 3,
      extraArgs: ['-m', '64'],
    });
    expect(run.completed).toBe(false);
    expect(run.reason).toBe(
      'the probe guest reached its MMU and caches on but did not finish its memory work: no result within 3s',
    );
  });

  it('treats a guest that never runs as a hang, at the deadline, and leaves no QEMU behind', async () => {
    const d = deps();
    // -S keeps the vCPU stopped, under any accelerator: the stand-in for a guest that hangs under KVM.
    const run = await runProbeGuest(d, {
      arch: 'amd64',
      qemu: 'qemu-system-x86_64',
      accel: 'tcg',
      deadlineSeconds: 3,
      extraArgs: ['-S'],
    });
    expect(run.completed).toBe(false);
    expect(run.reason).toBe('the probe guest hung: no result within 3s');
    expect(run.seconds).toBeGreaterThanOrEqual(3);
    expect(run.seconds).toBeLessThan(20);
    expect(d.resources.list()).toEqual([]);
  });

  // What the probe finds depends on the host (no /dev/kvm, a KVM that works, one that crawls): the
  // verdict must follow from its own measurements, whichever it is.
  it('gives a verdict that follows from what it measured on this host, within its deadlines', async () => {
    const t0 = performance.now();
    const probe = await probeKvm(deps(), { arch: 'amd64', qemu: 'qemu-system-x86_64', deadlineSeconds: 20 });
    const seconds = (performance.now() - t0) / 1000;
    expect(seconds).toBeLessThan(2 * 20 + 10);
    if (probe.usable) {
      expect(probe.kvmWorkSeconds).toBeDefined();
      expect(probe.kvmWorkSeconds!).toBeLessThan(probe.tcgWorkSeconds ?? 2);
      expect(probe.reason).toMatch(/faster than under TCG/);
    } else if (probe.kvmWorkSeconds !== undefined) {
      expect(probe.kvmWorkSeconds).toBeGreaterThanOrEqual(probe.tcgWorkSeconds ?? 2);
      expect(probe.reason).toMatch(/slower than software emulation/);
    } else {
      expect(probe.reason).toMatch(
        /^(QEMU exited with status \d+|the probe guest (hung|reached 64-bit mode but did not finish))/,
      );
    }
    console.log(`KVM probe on this host: ${probe.usable ? 'usable' : 'not usable'}: ${probe.reason} (${seconds.toFixed(1)}s)`);
  });
});
