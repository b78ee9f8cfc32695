/**
 * Debian facts the pipeline needs, in one place: the releases it knows and the architectures it builds,
 * with what each architecture means for the kernel, the serial console, QEMU and the host.
 */

export const ARCHITECTURES = ['amd64', 'arm64'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

interface ArchitectureFacts {
  /** Debian's kernel metapackage. */
  kernelPackage: string;
  /** The first serial port's device name: the console we read. */
  serialConsole: string;
  /** QEMU's system emulator and the Debian package that has it. */
  qemuBinary: string;
  qemuPackage: string;
  /** Node's process.arch on a host of this architecture. */
  nodeArch: NodeJS.Architecture;
  /** e_machine in an ELF header. */
  elfMachine: number;
  /** qemu-user's name for it (qemu-<name>-static, binfmt_misc's qemu-<name> handler). */
  qemuUser: string;
}

export const ARCHITECTURE: Readonly<Record<Architecture, ArchitectureFacts>> = {
  amd64: {
    kernelPackage: 'linux-image-amd64',
    serialConsole: 'ttyS0',
    qemuBinary: 'qemu-system-x86_64',
    qemuPackage: 'qemu-system-x86',
    nodeArch: 'x64',
    elfMachine: 62,
    qemuUser: 'x86_64',
  },
  arm64: {
    kernelPackage: 'linux-image-arm64',
    serialConsole: 'ttyAMA0',
    qemuBinary: 'qemu-system-aarch64',
    qemuPackage: 'qemu-system-arm',
    nodeArch: 'arm64',
    elfMachine: 183,
    qemuUser: 'aarch64',
  },
};

/** The runner's architecture in Debian's words, or undefined for one the pipeline does not build. */
export function hostArchitecture(nodeArch: string = process.arch): Architecture | undefined {
  return ARCHITECTURES.find((a) => ARCHITECTURE[a].nodeArch === nodeArch);
}

/** The architecture of an ELF header's e_machine, or undefined. */
export function architectureOfElfMachine(machine: number): Architecture | undefined {
  return ARCHITECTURES.find((a) => ARCHITECTURE[a].elfMachine === machine);
}

/**
 * Release code names oldest first, then the suite aliases. Only suites the archive has: a code name
 * announced for later (duke) is added when the archive carries it.
 */
export const CODENAMES = ['bullseye', 'bookworm', 'trixie', 'forky', 'sid'] as const;
export const SUITE_ALIASES = ['oldstable', 'stable', 'testing', 'unstable'] as const;
export const RELEASES = [...CODENAMES, ...SUITE_ALIASES] as const;
export type Release = (typeof RELEASES)[number];

/** Where a release sorts in a table: Debian's history first, aliases after, anything else last. */
export function releaseRank(release: string): number {
  const rank = (RELEASES as readonly string[]).indexOf(release);
  return rank < 0 ? RELEASES.length : rank;
}

/** Releases after trixie: unstable no longer has isc-dhcp-client (its Packages index of 2026-11). */
const AFTER_TRIXIE: ReadonlySet<string> = new Set(['forky', 'sid', 'testing', 'unstable']);

/** The DHCP client ifupdown uses for `iface eth0 inet dhcp`: dhcpcd after trixie, ISC dhclient before. */
export function dhcpClientPackage(release: string): string {
  return AFTER_TRIXIE.has(release) ? 'dhcpcd-base' : 'isc-dhcp-client';
}

export function kernelPackage(arch: Architecture): string {
  return ARCHITECTURE[arch].kernelPackage;
}

export function serialConsole(arch: Architecture): string {
  return ARCHITECTURE[arch].serialConsole;
}
