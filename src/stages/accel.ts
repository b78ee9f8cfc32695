import { accessSync, constants, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Stage } from '../context.js';
import type { Deps } from '../deps.js';
import type { KvmProbe } from '../results.js';
import { type Architecture, hostArchitecture } from '../debian.js';
import { StageError } from '../errors.js';
import { ensureHostTools } from '../host/packages.js';
import { qemuBinary, qemuMachineArgv, qemuPackage } from '../vm/qemu.js';
import { KVM_PROBE, KVM_PROBE_WORK_MARKER } from '../vm/probe/kvm-probe.js';

export const KVM_UDEV_RULE = 'KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS+="static_node=kvm"\n';
export const KVM_UDEV_RULE_FILE = '/etc/udev/rules.d/99-debian-vm-ci-kvm.rules';
const PROBE_DEADLINE_SECONDS = 20;

function kvmAccessible(dev = '/dev/kvm'): boolean {
  try {
    accessSync(dev, constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * GitHub's runners keep /dev/kvm root-only: open it up the way the popular actions do (udev rule, then chmod).
 * The rule is registered as a resource, so the end of the run (or the post step) removes it again.
 */
async function makeKvmAccessible(deps: Deps, log: (m: string) => void): Promise<void> {
  if (kvmAccessible()) return;
  log(`/dev/kvm is not accessible: adding the udev rule ${KVM_UDEV_RULE_FILE} (group kvm, mode 0666)`);
  // Written by tee through sudo: no temporary file with a guessable name is ever copied into udev's rules.
  const wrote = await deps.exec.run(['tee', KVM_UDEV_RULE_FILE], {
    stage: 'accel',
    privileged: true,
    check: false,
    input: KVM_UDEV_RULE,
  });
  if (wrote.exitCode === 0) {
    deps.resources.add({ kind: 'file', name: 'KVM udev rule', path: KVM_UDEV_RULE_FILE, privileged: true });
    await deps.exec.run(['udevadm', 'control', '--reload-rules'], { stage: 'accel', privileged: true, check: false });
    await deps.exec.run(['udevadm', 'trigger', '--name-match=kvm'], { stage: 'accel', privileged: true, check: false });
    await deps.exec.run(['udevadm', 'settle', '--timeout=5'], { stage: 'accel', privileged: true, check: false });
  }
  if (!kvmAccessible()) {
    log('udev did not change /dev/kvm: chmod 0666');
    await deps.exec.run(['chmod', '0666', '/dev/kvm'], { stage: 'accel', privileged: true, check: false });
  }
}

/** One boot of the probe guest. */
export interface ProbeRun {
  /** The guest printed its last marker and ended QEMU itself (isa-debug-exit on amd64, PSCI on arm64). */
  completed: boolean;
  /** Why not, in QEMU's or our words. */
  reason: string;
  seconds: number;
  /** From the marker after the critical step (long mode, MMU on) to the end of the memory work, as the lines arrived. */
  workSeconds?: number;
}

/** Boots the probe guest (src/vm/probe) of the architecture once with the given accelerator and a deadline. */
export async function runProbeGuest(
  deps: Deps,
  opts: { arch: Architecture; qemu: string; accel: 'kvm' | 'tcg'; deadlineSeconds?: number; extraArgs?: string[] },
): Promise<ProbeRun> {
  const guest = KVM_PROBE[opts.arch];
  const deadline = opts.deadlineSeconds ?? PROBE_DEADLINE_SECONDS;
  const dir = mkdtempSync(join(tmpdir(), 'dvc-kvm-probe-'));
  const kernel = join(dir, 'probe.elf');
  writeFileSync(kernel, Buffer.from(guest.elfBase64, 'base64'));
  const t0 = performance.now();
  const seconds = (): number => Math.round((performance.now() - t0) / 10) / 100;
  let stepAt: number | undefined;
  let workDoneAt: number | undefined;
  try {
    const argv = [
      ...qemuMachineArgv({
        arch: opts.arch,
        accel: opts.accel,
        name: 'debian-vm-ci-kvm-probe',
        memoryMiB: 128,
        binary: opts.qemu,
      }),
      '-serial',
      'stdio',
      ...guest.devices,
      '-kernel',
      kernel,
      ...(opts.extraArgs ?? []),
    ];
    let r;
    try {
      r = await deps.exec.run(argv, {
        stage: 'accel',
        check: false,
        timeoutSeconds: deadline,
        onLine: (line) => {
          if (line.includes(guest.stepMarker)) stepAt ??= performance.now();
          if (line.includes(KVM_PROBE_WORK_MARKER)) workDoneAt ??= performance.now();
        },
      });
    } catch (e) {
      if (e instanceof StageError && /did not finish within/.test(e.message)) {
        const how = stepAt ? `reached ${guest.step} but did not finish its memory work` : 'hung';
        return { completed: false, reason: `the probe guest ${how}: no result within ${deadline}s`, seconds: seconds() };
      }
      throw e;
    }
    if (r.exitCode === guest.exitStatus && r.stdout.includes(KVM_PROBE_WORK_MARKER)) {
      const work = stepAt && workDoneAt ? Math.round((workDoneAt - stepAt) / 10) / 100 : undefined;
      return { completed: true, reason: 'the probe guest finished', seconds: seconds(), workSeconds: work };
    }
    const said = (
      r.stderr
        .trim()
        .split('\n')
        .find((l) => /error|fail|could not|cannot/i.test(l)) ??
      r.stderr.trim().split('\n')[0] ??
      ''
    ).trim();
    return {
      completed: false,
      reason: `QEMU exited with status ${r.exitCode}${said ? `: ${said}` : ''}`,
      seconds: seconds(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Proves KVM by booting the probe guest with the CPU model our VMs use and a deadline: QEMU aborting,
 * the guest hanging or never reaching long mode (amd64) or running with its MMU on (arm64) all mean
 * "not usable". A guest that gets there is
 * then timed against the same guest under TCG: a KVM that runs the probe's memory work slower than
 * software emulation (measured on a nested host: 9.0 s under KVM, 0.35 s under TCG, and a Debian
 * kernel still decompressing after 40 s) is not usable either.
 */
export async function probeKvm(
  deps: Deps,
  opts: { arch: Architecture; qemu: string; deadlineSeconds?: number; extraArgs?: string[] },
): Promise<KvmProbe> {
  // TCG first: its time bounds how long KVM may take. A KVM still busy at several times TCG's whole run
  // is slower than emulation whatever it would have finished with (QEMU itself starts in well under 10 s).
  const tcg = await runProbeGuest(deps, {
    arch: opts.arch,
    qemu: opts.qemu,
    accel: 'tcg',
    deadlineSeconds: opts.deadlineSeconds,
  });
  const deadline = Math.min(opts.deadlineSeconds ?? PROBE_DEADLINE_SECONDS, Math.max(10, Math.ceil(tcg.seconds * 5)));
  const kvm = await runProbeGuest(deps, { ...opts, accel: 'kvm', deadlineSeconds: deadline });
  const seconds = Math.round((kvm.seconds + tcg.seconds) * 100) / 100;
  if (!kvm.completed) {
    const compared = tcg.completed ? ` (TCG ran the whole probe in ${tcg.seconds}s)` : '';
    return { usable: false, reason: `${kvm.reason}${compared}`, seconds };
  }
  const kvmWork = kvm.workSeconds ?? kvm.seconds;
  // Without a TCG figure to compare with, a working KVM still does this work in well under a second.
  const tcgWork = tcg.completed ? (tcg.workSeconds ?? tcg.seconds) : 2;
  const figures = `the probe's memory work took ${kvmWork}s under KVM, ${tcg.completed ? `${tcgWork}s under TCG` : 'TCG did not finish it'}`;
  if (kvmWork >= tcgWork) {
    return {
      usable: false,
      reason: `KVM runs guests slower than software emulation (${figures})`,
      seconds,
      kvmWorkSeconds: kvmWork,
      tcgWorkSeconds: tcg.workSeconds,
    };
  }
  return {
    usable: true,
    reason: `the probe guest reached ${KVM_PROBE[opts.arch].step} under KVM and ran faster than under TCG (${figures})`,
    seconds,
    kvmWorkSeconds: kvmWork,
    tcgWorkSeconds: tcg.workSeconds,
  };
}

export const accel: Stage<'accel'> = {
  name: 'accel',
  skipReason: () => undefined,
  async run({ config, deps, progress }) {
    const qemu = qemuBinary(config.architecture);
    await ensureHostTools(deps, 'accel', 'running VMs', [{ command: qemu, package: qemuPackage(config.architecture) }]);
    if (config.accel === 'tcg') {
      return { accel: 'tcg', summary: 'TCG (accel: tcg)' };
    }
    const hostArch = hostArchitecture() ?? process.arch;
    let probe: KvmProbe;
    if (hostArch !== config.architecture) {
      probe = { usable: false, reason: `the runner is ${hostArch}, the image is ${config.architecture}`, seconds: 0 };
    } else if (!existsSync('/dev/kvm')) {
      probe = { usable: false, reason: '/dev/kvm does not exist (no hardware virtualisation on this runner)', seconds: 0 };
    } else {
      await makeKvmAccessible(deps, progress);
      if (!kvmAccessible()) {
        probe = {
          usable: false,
          reason: '/dev/kvm is not readable and writable by this user, and neither udev nor chmod changed that',
          seconds: 0,
        };
      } else {
        progress(
          "probing KVM: booting a probe guest under TCG, then under KVM with a deadline of five times TCG's (10 s at least)",
        );
        probe = await probeKvm(deps, { arch: config.architecture, qemu });
      }
    }
    progress(`KVM ${probe.usable ? 'usable' : 'NOT usable'}: ${probe.reason} (${probe.seconds}s)`);
    if (probe.usable) return { accel: 'kvm', probe, summary: `KVM (probe booted in ${probe.seconds}s)` };
    if (config.accel === 'kvm') {
      throw new StageError('accel', `accel: kvm was requested but KVM is not usable: ${probe.reason}`, 'infrastructure');
    }
    const warning = `KVM is not usable (${probe.reason}); falling back to TCG software emulation, which is many times slower.`;
    deps.reporter.warning(warning, { title: 'debian-vm-ci: running without KVM' });
    return { accel: 'tcg', probe, warning, summary: `TCG fallback: ${probe.reason}` };
  },
};
