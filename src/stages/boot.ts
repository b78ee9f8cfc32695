import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_BOOT_TIMEOUT } from '../config.js';
import type { Stage } from '../context.js';
import { StageError } from '../errors.js';
import { ensureHostTools } from '../host/packages.js';
import type { ConsoleEvent } from '../vm/console.js';
import { GuestVm } from '../vm/guest.js';
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
    const { config, deps, results, paths, progress } = ctx;
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
    const milestones: { milestone: string; seconds: number }[] = [];
    const onEvent = (e: ConsoleEvent, seconds: number): void => {
      if (e.type === 'milestone') {
        milestones.push({ milestone: e.milestone, seconds });
        progress(`${seconds}s ${e.milestone}: ${e.line.slice(0, 100)}`);
      }
    };
    progress(
      `QEMU ${accel.toUpperCase()} ${config.vmCpus} CPU ${config.vmMemoryMiB} MiB ${config.firmware}; waiting up to ${timeout}s for the login prompt`,
    );
    let vm: GuestVm;
    try {
      vm = await GuestVm.start(deps, spec, ctx.log, onEvent, () => run.release());
    } catch (e) {
      run.release();
      throw new StageError('boot', `QEMU did not start: ${e instanceof Error ? e.message : String(e)}`);
    }
    const outcome = await vm.waitForBoot(timeout, ctx.signal);
    if (outcome.kind === 'login') {
      milestones.push({ milestone: 'login', seconds: outcome.seconds });
      progress(`${outcome.seconds}s login prompt: ${outcome.event.line}`);
      // The VM keeps running for validate; whoever shuts it down also removes its scratch dir.
      return {
        summary: `login prompt after ${outcome.seconds}s (${accel})`,
        vm,
        bootSeconds: outcome.seconds,
        shareDir,
        milestones,
      };
    }
    mkdirSync(paths.diagnostics, { recursive: true });
    const screenshot = join(paths.diagnostics, 'screen.png');
    const shot = await vm.screenshot(screenshot);
    const last = vm.watcher.tail(30);
    const earlier = vm.watcher.causes().filter((l) => !last.includes(l));
    // What failed first (it may have scrolled out of the tail), then the last console lines.
    const tail = earlier.length ? [...earlier, '…', ...last] : last;
    await vm.shutdown(`boot ${outcome.kind}`);
    const seen = milestones.map((m) => m.milestone).join(' → ') || 'nothing recognisable';
    const shotNote = shot ? ' A screenshot of the VGA console is in diagnostics/screen.png.' : '';
    if (outcome.kind === 'failure') {
      throw new StageError(
        'boot',
        `boot failed after ${outcome.seconds}s: ${outcome.event.description}. Console: "${outcome.event.line}".${shotNote}`,
        'test',
        tail,
      );
    }
    if (outcome.kind === 'exited') {
      throw new StageError(
        'boot',
        `QEMU exited with status ${outcome.code} after ${outcome.seconds}s before a login prompt (seen: ${seen}).${shotNote}`,
        'test',
        tail,
      );
    }
    if (ctx.signal.aborted) throw new StageError('boot', `cancelled after ${outcome.seconds}s`, 'infrastructure', tail);
    throw new StageError(
      'boot',
      `no login prompt within ${timeout}s (boot-timeout); last milestone: ${milestones.at(-1)?.milestone ?? 'none'} (seen: ${seen}).${shotNote}`,
      'test',
      tail,
    );
  },
};
