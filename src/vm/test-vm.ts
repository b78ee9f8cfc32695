/**
 * The test VM of an installed image: QEMU and, for UEFI, the firmware on the host, and the spec that boots the image
 * the way the installer left it (from its own boot loader, or with the kernel QEMU loads for mmdebstrap images).
 * The boot stage boots it on a qcow2 overlay; the install stage's first boot (built packages installed in the guest)
 * writes to the image itself.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Architecture } from '../debian.js';
import type { Deps, StageIo } from '../deps.js';
import { StageError } from '../errors.js';
import { ensureHostTools } from '../host/packages.js';
import type { BootSpec, StageName } from '../results.js';
import {
  findUefiFirmware,
  qemuBinary,
  qemuPackage,
  UEFI_FIRMWARE_CANDIDATES,
  UEFI_FIRMWARE_PACKAGE,
  type QemuVmSpec,
  type UefiFirmware,
} from './qemu.js';
import { guestNetwork } from './guest-network.js';
import { SHARE_TAG } from './session.js';

/** The UEFI firmware, installed from the distribution's package when none of the known paths has it. */
async function ensureUefiFirmware(deps: Deps, stage: StageName, arch: Architecture): Promise<UefiFirmware> {
  const found = findUefiFirmware(arch);
  if (found) return found;
  const pkg = UEFI_FIRMWARE_PACKAGE[arch];
  await ensureHostTools(deps, stage, 'UEFI firmware', [
    { command: UEFI_FIRMWARE_CANDIDATES[arch][0].code, package: pkg, optional: true },
  ]);
  const installed = findUefiFirmware(arch);
  if (installed) return installed;
  const tried = UEFI_FIRMWARE_CANDIDATES[arch].map((f) => `${f.code} with ${f.vars}`).join('; ');
  throw new StageError(stage, `no UEFI firmware for ${arch} found (package ${pkg}); tried: ${tried}`);
}

export interface TestVm {
  spec: QemuVmSpec;
  /** The host directory shared with the guest over 9p (tag `dvc`). */
  shareDir: string;
}

/**
 * The spec of a test VM of `image` in `dir` (a scratch dir of the caller's, short: unix socket paths are limited to
 * 107 bytes). `overlay`: the VM writes to a qcow2 overlay in `dir`, so the image stays as the installer made it;
 * otherwise to the image. Its network is walled to the apt proxy (vm/guest-network.ts) unless `vm-network` is
 * `open`; `walled` keeps the wall regardless (the first boot, which only installs packages).
 */
export async function prepareTestVm(
  io: StageIo,
  stage: StageName,
  config: Config,
  opts: {
    accel: 'kvm' | 'tcg';
    image: string;
    boot: BootSpec;
    dir: string;
    serialLog: string;
    overlay: boolean;
    walled?: boolean;
  },
): Promise<TestVm> {
  const { deps } = io;
  await ensureHostTools(deps, stage, 'booting the image', [
    { command: qemuBinary(config.architecture), package: qemuPackage(config.architecture) },
    { command: 'qemu-img', package: 'qemu-utils' },
  ]);
  const uefi = config.firmware === 'uefi' ? await ensureUefiFirmware(deps, stage, config.architecture) : undefined;
  const shareDir = join(opts.dir, 'share');
  mkdirSync(shareDir, { recursive: true });
  let disk = opts.image;
  if (opts.overlay) {
    disk = join(opts.dir, 'overlay.qcow2');
    await deps.exec.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', opts.image, disk], { stage, log: io.log });
  }
  let uefiVars: string | undefined;
  if (uefi) {
    uefiVars = join(opts.dir, 'efivars.fd');
    copyFileSync(uefi.vars, uefiVars);
  }
  const spec: QemuVmSpec = {
    arch: config.architecture,
    accel: opts.accel,
    cpus: config.vmCpus,
    memoryMiB: config.vmMemoryMiB,
    firmware: config.firmware,
    disk,
    diskFormat: opts.overlay ? 'qcow2' : 'raw',
    direct: opts.boot.kind === 'direct' ? opts.boot : undefined,
    serialSocket: join(opts.dir, 'serial.sock'),
    serialLog: opts.serialLog,
    monitorSocket: join(opts.dir, 'monitor.sock'),
    pidFile: join(opts.dir, 'qemu.pid'),
    share: { path: shareDir, tag: SHARE_TAG },
    network: guestNetwork(opts.dir, opts.walled === true || config.vmNetwork === 'restricted'),
    uefiCode: uefi?.code,
    uefiVars,
  };
  return { spec, shareDir };
}
