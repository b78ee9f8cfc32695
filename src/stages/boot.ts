import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_BOOT_TIMEOUT } from '../config.js';
import type { Stage } from '../context.js';
import { StageError } from '../errors.js';
import { ensureHostTools } from '../host/packages.js';
import { bootAndWatch } from '../vm/boot-watch.js';
import { SHARE_TAG } from '../vm/session.js';
import {
  findUefiFirmware,
  qemuBinary,
  qemuPackage,
  UEFI_FIRMWARE_CANDIDATES,
  UEFI_FIRMWARE_PACKAGE,
  type QemuVmSpec,
  type UefiFirmware,
} from '../vm/qemu.js';
import type { Architecture } from '../debian.js';
import type { Deps } from '../deps.js';
import { scratchDir } from '../host/scratch.js';

/** The UEFI firmware, installed from the distribution's package when none of the known paths has it. */
async function ensureUefiFirmware(deps: Deps, arch: Architecture): Promise<UefiFirmware> {
  const found = findUefiFirmware(arch);
  if (found) return found;
  const pkg = UEFI_FIRMWARE_PACKAGE[arch];
  await ensureHostTools(deps, 'boot', 'UEFI firmware', [
    { command: UEFI_FIRMWARE_CANDIDATES[arch][0].code, package: pkg, optional: true },
  ]);
  const installed = findUefiFirmware(arch);
  if (installed) return installed;
  const tried = UEFI_FIRMWARE_CANDIDATES[arch].map((f) => `${f.code} with ${f.vars}`).join('; ');
  throw new StageError('boot', `no UEFI firmware for ${arch} found (package ${pkg}); tried: ${tried}`);
}

export const boot: Stage<'boot'> = {
  name: 'boot',
  skipReason: (config) => (config.install ? undefined : 'install: false'),
  async run(ctx) {
    const { config, deps, results, paths } = ctx;
    const installed = results.install;
    if (!installed) throw new StageError('boot', 'there is no installed image to boot');
    const accel = results.accel?.accel ?? 'tcg';
    const timeout = config.bootTimeout ?? DEFAULT_BOOT_TIMEOUT[accel];
    await ensureHostTools(deps, 'boot', 'booting the image', [
      { command: qemuBinary(config.architecture), package: qemuPackage(config.architecture) },
      { command: 'qemu-img', package: 'qemu-utils' },
    ]);
    const uefi = config.firmware === 'uefi' ? await ensureUefiFirmware(deps, config.architecture) : undefined;
    // Sockets get a short path of their own: unix socket paths are limited to 107 bytes.
    const run = scratchDir(ctx, 'vm');
    const shareDir = join(run.path, 'share');
    mkdirSync(shareDir, { recursive: true });
    const overlay = join(run.path, 'overlay.qcow2');
    // The VM writes to an overlay: the published image stays exactly what the installer produced.
    await deps.exec.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', installed.image, overlay], {
      stage: 'boot',
      log: ctx.log,
    });
    let uefiVars: string | undefined;
    if (uefi) {
      uefiVars = join(run.path, 'efivars.fd');
      copyFileSync(uefi.vars, uefiVars);
    }
    const spec: QemuVmSpec = {
      arch: config.architecture,
      accel,
      cpus: config.vmCpus,
      memoryMiB: config.vmMemoryMiB,
      firmware: config.firmware,
      disk: overlay,
      diskFormat: 'qcow2',
      direct: installed.boot.kind === 'direct' ? installed.boot : undefined,
      serialSocket: join(run.path, 'serial.sock'),
      serialLog: paths.serialLog,
      monitorSocket: join(run.path, 'monitor.sock'),
      pidFile: join(run.path, 'qemu.pid'),
      share: { path: shareDir, tag: SHARE_TAG },
      uefiCode: uefi?.code,
      uefiVars,
    };
    const booted = await bootAndWatch(ctx, 'boot', spec, {
      timeoutSeconds: timeout,
      onStopped: () => run.release(),
      diagnosticsDir: ctx.paths.diagnostics,
      screenshot: 'screen.png',
      what: 'boot',
    });
    // The VM keeps running for validate; whoever shuts it down also removes its scratch dir.
    return {
      summary: `login prompt after ${booted.seconds}s (${accel})`,
      vm: booted.vm,
      bootSeconds: booted.seconds,
      shareDir,
      milestones: booted.milestones,
    };
  },
};
