import { availableParallelism } from 'node:os';
import type { Config } from '../config.js';
import { hostArchitecture } from '../debian.js';
import type { StageIo } from '../deps.js';
import { StageError } from '../errors.js';
import { findOnPath, ensureHostTools } from '../host/packages.js';

// Which backend runs the builder VM (QEMU with KVM, User-Mode Linux, QEMU/TCG), and the probe that UML works here.

export const UML_KERNEL = '/usr/bin/linux.uml';
export const SLIRP_HELPER = '/usr/bin/libslirp-helper';

/** The builder's backend, chosen like debos' fakemachine chooses: native speed where possible. */
export type BuilderBackend = 'uml' | 'qemu-kvm' | 'qemu-tcg';

export const BACKEND_LABEL: Record<BuilderBackend, string> = {
  uml: 'User-Mode Linux',
  'qemu-kvm': 'QEMU/KVM',
  'qemu-tcg': 'QEMU/TCG',
};

/**
 * Picks the builder backend: QEMU with KVM when the accel stage proved KVM usable. Without KVM,
 * QEMU/TCG when the host has two or more cores (multi-threaded TCG uses them all; on a 2-core host
 * the whole grml-debootstrap install took 730 s under TCG against 798 s under User-Mode Linux, whose
 * system calls cost more than its native execution saves), else User-Mode Linux, as debos'
 * fakemachine orders them (x86_64 only), else QEMU/TCG. `builder-backend` overrides the choice.
 */
export async function chooseBuilderBackend(
  io: StageIo,
  config: Config,
  accel: AccelVerdict | undefined,
  hostCpus = availableParallelism(),
): Promise<BuilderBackend> {
  const kvm = accel?.accel === 'kvm';
  const umlPossible = config.architecture === 'amd64' && hostArchitecture() === 'amd64';
  const want = config.builderBackend;
  if (want === 'kvm' && !kvm) {
    throw new StageError(
      'install',
      `builder-backend is kvm but KVM is not usable here (${accel?.summary ?? 'accel did not run'}); use auto, uml or qemu`,
      'infrastructure',
    );
  }
  if (want === 'uml' && !umlPossible) {
    throw new StageError(
      'install',
      `builder-backend is uml but User-Mode Linux builds ${config.architecture} systems only on x86_64 hosts with architecture amd64`,
      'infrastructure',
    );
  }
  if (want === 'uml' || (want === 'auto' && !kvm && umlPossible && hostCpus < 2)) {
    // Optional: Ubuntu 24.04 packages neither user-mode-linux nor libslirp-helper; QEMU/TCG then builds.
    const lacking = await ensureHostTools(io.deps, 'install', 'the User-Mode Linux builder', [
      { command: UML_KERNEL, package: 'user-mode-linux', optional: true },
      { command: SLIRP_HELPER, package: 'libslirp-helper', optional: true },
      { command: 'python3', package: 'python3-minimal', optional: true },
    ]);
    let why: string;
    if (lacking.length === 0 && findOnPath(UML_KERNEL) && findOnPath(SLIRP_HELPER)) {
      const probe = await probeUml(io);
      if (probe.usable) return 'uml';
      why = `User-Mode Linux does not work on this host: ${probe.detail}`;
    } else {
      why = `User-Mode Linux is not available here (missing ${lacking.map((t) => `${t.command} from ${t.package}`).join(', ')})`;
    }
    if (want === 'uml') throw new StageError('install', `builder-backend is uml but ${why}; use auto or qemu`, 'infrastructure');
    io.deps.reporter.warning(`${why}: the builder runs in QEMU/TCG`);
  }
  return kvm ? 'qemu-kvm' : 'qemu-tcg';
}

/** What the accel stage found (its result's verdict and summary), on which the backend choice depends. */
export interface AccelVerdict {
  accel: 'kvm' | 'tcg';
  summary: string;
}

/** What starting User-Mode Linux on this host showed: whether a program runs in it, and the evidence. */
export interface UmlProbe {
  usable: boolean;
  detail: string;
}

/**
 * Starts the UML kernel with the host's root read-only over hostfs and init=/bin/true: on a host where
 * UML works, true runs and exits 0, and the kernel reports init's exit with exitcode=0x00000000 (about a
 * second). Some hosts' CPUs break UML 6.1 before any program runs ("userspace - ptrace set fp regs failed,
 * errno = 14" and a SIGSEGV'd init, seen on a CI machine), which this finds before a job is started.
 */
export async function probeUml(io: StageIo, kernel = UML_KERNEL): Promise<UmlProbe> {
  const r = await io.deps.exec.run(
    [
      kernel,
      'mem=64M',
      'root=/dev/root',
      'rootfstype=hostfs',
      'rootflags=/',
      'ro',
      'init=/bin/true',
      'con=null',
      'con0=null,fd:1',
      'ssl=null',
      'quiet',
    ],
    { stage: 'install', check: false, timeoutSeconds: 60, log: io.log },
  );
  const out = `${r.stdout}\n${r.stderr}`;
  if (/Attempted to kill init! exitcode=0x00000000\b/.test(out)) return { usable: true, detail: '/bin/true ran and exited 0' };
  const evidence =
    out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /failed|panic|exitcode|error/i.test(l) && !/find_iomem|ubd device/.test(l))
      .slice(0, 3)
      .join('; ') || `exit status ${r.exitCode}`;
  return { usable: false, detail: `a program does not run in it (${evidence.slice(0, 300)})` };
}
