import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Deps } from '../../src/context.js';
import { HostExec } from '../../src/host/exec.js';
import { ConsoleReporter } from '../../src/host/reporter.js';
import { probeKvm } from '../../src/stages/accel.js';
import { ResourceTracker } from '../../src/state.js';

const dir = mkdtempSync(join(tmpdir(), 'dvc-accel-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function deps(): Deps {
  const reporter = new ConsoleReporter(() => undefined);
  const resources = new ResourceTracker(join(dir, 'resources.json'));
  return { exec: new HostExec(reporter, resources), reporter, resources, env: process.env, github: undefined, cacheDir: dir };
}

describe('the KVM probe on this machine', () => {
  it('concludes "not usable" well within its deadline (/dev/kvm exists, guests do not run)', async () => {
    const t0 = performance.now();
    const probe = await probeKvm(deps(), { qemu: 'qemu-system-x86_64', deadlineSeconds: 20 });
    const seconds = (performance.now() - t0) / 1000;
    expect(probe.usable).toBe(false);
    expect(probe.reason).toMatch(/QEMU exited with status|hung/);
    expect(seconds).toBeLessThan(25);
  });

  it('treats a guest that never runs as a hang, at the deadline, and leaves no QEMU behind', async () => {
    const d = deps();
    // -S keeps the vCPU stopped: the stand-in for a guest that hangs under KVM.
    const probe = await probeKvm(d, { qemu: 'qemu-system-x86_64', deadlineSeconds: 3, extraArgs: ['-cpu', 'qemu64', '-S'] });
    expect(probe.usable).toBe(false);
    expect(probe.reason).toBe('the probe guest hung: no result within 3s');
    expect(probe.seconds).toBeGreaterThanOrEqual(3);
    expect(probe.seconds).toBeLessThan(10);
    expect(d.resources.list()).toEqual([]);
  });

  it('reports "usable" when the probe guest reaches long mode (run under TCG: proves the payload itself)', async () => {
    const probe = await probeKvm(deps(), {
      qemu: 'qemu-system-x86_64',
      deadlineSeconds: 30,
      extraArgs: ['-accel', 'tcg', '-cpu', 'qemu64'],
    });
    // Under "-accel kvm -accel tcg" QEMU falls back only when KVM cannot start; here KVM starts with qemu64,
    // so whichever accelerator ran, the payload must have printed its marker and exited with 33.
    expect(probe.usable).toBe(true);
    expect(probe.reason).toMatch(/64-bit mode/);
  });
});
