import { existsSync } from 'node:fs';
import type { Firmware } from '../config.js';
import { ARCHITECTURE, type Architecture } from '../debian.js';
import { userNetdev, type GuestNetwork } from './guest-network.js';

export function qemuBinary(arch: Architecture): string {
  return ARCHITECTURE[arch].qemuBinary;
}

export function qemuPackage(arch: Architecture): string {
  return ARCHITECTURE[arch].qemuPackage;
}

/** UEFI firmware: the code image (read-only) and the variable store template we copy per VM. */
export interface UefiFirmware {
  code: string;
  vars: string;
}

/**
 * Where distributions put EDK2's firmware, searched in this order: Debian (bookworm, trixie) and Ubuntu
 * (22.04 and later) ship the 4 MiB OVMF images and AAVMF; older releases the 2 MiB ones; then Fedora's
 * and Arch's names, for self-hosted runners.
 */
export const UEFI_FIRMWARE_CANDIDATES: Readonly<Record<Architecture, readonly UefiFirmware[]>> = {
  amd64: [
    { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
    { code: '/usr/share/OVMF/OVMF_CODE.fd', vars: '/usr/share/OVMF/OVMF_VARS.fd' },
    { code: '/usr/share/edk2/ovmf/OVMF_CODE.fd', vars: '/usr/share/edk2/ovmf/OVMF_VARS.fd' },
    { code: '/usr/share/edk2/x64/OVMF_CODE.4m.fd', vars: '/usr/share/edk2/x64/OVMF_VARS.4m.fd' },
  ],
  arm64: [
    { code: '/usr/share/AAVMF/AAVMF_CODE.fd', vars: '/usr/share/AAVMF/AAVMF_VARS.fd' },
    { code: '/usr/share/AAVMF/AAVMF_CODE.no-secboot.fd', vars: '/usr/share/AAVMF/AAVMF_VARS.fd' },
    { code: '/usr/share/edk2/aarch64/QEMU_EFI-pflash.raw', vars: '/usr/share/edk2/aarch64/vars-template-pflash.raw' },
  ],
};

/** The Debian and Ubuntu package of the firmware. */
export const UEFI_FIRMWARE_PACKAGE: Readonly<Record<Architecture, string>> = { amd64: 'ovmf', arm64: 'qemu-efi-aarch64' };

/** The first candidate whose code and variable store both exist. */
export function findUefiFirmware(arch: Architecture, exists: (path: string) => boolean = existsSync): UefiFirmware | undefined {
  return UEFI_FIRMWARE_CANDIDATES[arch].find((f) => exists(f.code) && exists(f.vars));
}

export interface QemuVmSpec {
  arch: Architecture;
  accel: 'kvm' | 'tcg';
  cpus: number;
  memoryMiB: number;
  firmware: Firmware;
  /** The disk QEMU writes to: a qcow2 overlay over the installed image. */
  disk: string;
  diskFormat: 'qcow2' | 'raw';
  /** Direct kernel boot (mmdebstrap images): QEMU loads kernel and initrd itself. */
  direct?: { kernel: string; initrd: string; append: string };
  /** Serial console: a socket we keep reading, mirrored into the log file by QEMU. */
  serialSocket: string;
  serialLog: string;
  monitorSocket: string;
  pidFile: string;
  /** Host directory shared with the guest over 9p. */
  share?: { path: string; tag: string };
  /** The user-mode network: walled to the apt proxy unless `restricted` is false. */
  network: GuestNetwork;
  /** The UEFI code image (findUefiFirmware); the first known path when absent. */
  uefiCode?: string;
  /** Per-VM copy of the UEFI variable store. */
  uefiVars?: string;
}

/** What every VM we start has in common: the probe guest, the builder VM and the test VM. */
export interface QemuMachine {
  arch: Architecture;
  accel: 'kvm' | 'tcg';
  name: string;
  memoryMiB: number;
  /** Virtual CPUs; QEMU's default (one) when absent. */
  cpus?: number;
  /** Appended to the machine type (q35 on amd64, virt on arm64). */
  machineOptions?: string;
  /** The emulator; the architecture's qemu-system binary when absent. */
  binary?: string;
}

/**
 * The start of every QEMU command line: no default devices, no user configuration, the machine type, the
 * accelerator (multi-threaded TCG), the host's CPU under KVM and every TCG feature otherwise, no display.
 * q35 has no floppy controller, which a Debian guest probes endlessly under TCG on the pc machine.
 */
export function qemuMachineArgv(m: QemuMachine): string[] {
  const machine = (m.arch === 'amd64' ? 'q35' : 'virt') + (m.machineOptions ? `,${m.machineOptions}` : '');
  return [
    m.binary ?? qemuBinary(m.arch),
    '-name',
    m.name,
    '-nodefaults',
    '-no-user-config',
    '-machine',
    machine,
    '-accel',
    m.accel === 'kvm' ? 'kvm' : 'tcg,thread=multi',
    '-cpu',
    m.accel === 'kvm' ? 'host' : 'max',
    ...(m.cpus ? ['-smp', String(m.cpus)] : []),
    '-m',
    String(m.memoryMiB),
    '-display',
    'none',
  ];
}

/** The QEMU command line for a test VM: pure, so that tests can read it. */
export function qemuArgv(spec: QemuVmSpec): string[] {
  const x86 = spec.arch === 'amd64';
  const argv = qemuMachineArgv({
    arch: spec.arch,
    accel: spec.accel,
    name: 'debian-vm-ci',
    cpus: spec.cpus,
    memoryMiB: spec.memoryMiB,
    // graphics=off makes SeaBIOS mirror its screen to the serial port ("No bootable device." included);
    // with a VGA device and without it, SeaBIOS writes nothing to the serial console at all.
    machineOptions: x86 ? 'graphics=off' : undefined,
  });
  if (spec.firmware === 'uefi') {
    const code = spec.uefiCode ?? UEFI_FIRMWARE_CANDIDATES[spec.arch][0].code;
    argv.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${code}`);
    if (spec.uefiVars) argv.push('-drive', `if=pflash,format=raw,unit=1,file=${spec.uefiVars}`);
  }
  // A VGA device (not shown) so that the monitor can take a screenshot of what only tty0 saw.
  argv.push('-vga', x86 ? 'std' : 'none');
  if (!x86) argv.push('-device', 'ramfb');
  argv.push('-chardev', `socket,id=serial0,path=${spec.serialSocket},server=on,wait=on,logfile=${spec.serialLog},logappend=on`);
  argv.push('-serial', 'chardev:serial0');
  argv.push('-monitor', `unix:${spec.monitorSocket},server=on,wait=off`);
  argv.push('-pidfile', spec.pidFile);
  argv.push('-drive', `file=${spec.disk},if=virtio,format=${spec.diskFormat},cache=unsafe,discard=unmap`);
  argv.push('-netdev', userNetdev('net0', spec.network), '-device', 'virtio-net-pci,netdev=net0,romfile=');
  argv.push('-device', 'virtio-rng-pci');
  if (spec.share) {
    argv.push('-virtfs', `local,path=${spec.share.path},mount_tag=${spec.share.tag},security_model=none,id=${spec.share.tag}`);
  }
  if (spec.direct) {
    argv.push('-kernel', spec.direct.kernel, '-initrd', spec.direct.initrd, '-append', spec.direct.append);
  }
  // A guest that reboots (panic=N, a failed boot) makes QEMU exit instead of looping.
  argv.push('-no-reboot');
  return argv;
}
