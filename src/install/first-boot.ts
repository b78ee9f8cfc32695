/**
 * The built packages installed from a first boot of the image, when mmdebstrap cannot install them in a user
 * namespace (the host gives this user none, or the action runs as root): the image is booted in QEMU, written to
 * directly, the packages are installed with apt inside it, and the guest powers off. Their maintainer scripts run as
 * root of the VM, never as root of the runner. The boot stage then boots the image with them, as it would have.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_BOOT_TIMEOUT, type Config } from '../config.js';
import type { StageIo } from '../deps.js';
import { StageError } from '../errors.js';
import type { OutputPaths } from '../paths.js';
import type { BootSpec } from '../results.js';
import { scratchDir } from '../host/scratch.js';
import { bootAndWatch } from '../vm/boot-watch.js';
import { GUEST_APT_PROXY_CONF, guestJobError, packGuestInput, runGuestJob } from '../vm/guest-job.js';
import { GuestSession } from '../vm/session.js';
import { prepareTestVm } from '../vm/test-vm.js';

/** The script the guest runs (a file of its own, linted like any shell the action runs). */
export const BUILT_PACKAGES_IN_GUEST = readFileSync(new URL('./built-packages-in-guest.sh', import.meta.url), 'utf8');

/** The first boot's serial console, beside the stage log. */
export const FIRST_BOOT_SERIAL_LOG = 'install-first-boot-serial.log';

const FAILURE: Record<number, string> = {
  100: 'apt-get update in the first boot of the image failed',
  101: 'the built packages could not be installed in the first boot of the image',
  102: 'unpacking the built packages in the first boot of the image failed',
};

export async function installBuiltInFirstBoot(
  io: StageIo,
  config: Config,
  paths: OutputPaths,
  opts: { debs: readonly string[]; boot: BootSpec; accel: 'kvm' | 'tcg'; work: string },
): Promise<number> {
  const started = performance.now();
  const vmDir = scratchDir(io, 'first-boot');
  const { spec, shareDir } = await prepareTestVm(io, 'install', config, {
    accel: opts.accel,
    image: paths.imageFile,
    boot: opts.boot,
    dir: vmDir.path,
    serialLog: join(paths.logs, FIRST_BOOT_SERIAL_LOG),
    overlay: false,
    walled: true,
  }).catch((e: unknown) => {
    vmDir.release();
    throw e;
  });
  io.progress(`first boot of the image to install the built packages in it (serial console in logs/${FIRST_BOOT_SERIAL_LOG})`);
  const booted = await bootAndWatch(io, 'install', spec, {
    timeoutSeconds: config.bootTimeout ?? DEFAULT_BOOT_TIMEOUT[opts.accel],
    onStopped: () => vmDir.release(),
    diagnosticsDir: paths.diagnostics,
    screenshot: 'install-first-boot.png',
    what: 'the first boot of the image (to install the built packages)',
  });
  try {
    const tarball = await packGuestInput(io, 'install', config, opts.work, { debs: opts.debs });
    const job = await runGuestJob(
      io,
      'install',
      config,
      { vm: booted.vm, shareDir },
      {
        script: { name: 'built-packages.sh', text: BUILT_PACKAGES_IN_GUEST },
        inputs: { 'built-input.tar': tarball },
        args: [GUEST_APT_PROXY_CONF],
        timeoutSeconds: config.installTimeout,
        what: 'installing the built packages',
      },
    );
    if (job.run.exitCode !== 0) {
      const why = FAILURE[job.run.exitCode] ?? `the install script in the guest exited with status ${job.run.exitCode}`;
      const error = guestJobError('install', job, why);
      // apt's refusal of the project's packages is the project's failure; a mirror that cannot be reached is not.
      throw job.run.exitCode === 101 && !job.proxyTrouble
        ? new StageError('install', error.message, 'test', error.details)
        : error;
    }
    // A clean power-off: the file system in the image is written back whole before the boot stage boots it.
    const session = GuestSession.existing(booted.vm);
    if (!session) throw new StageError('install', 'the guest session of the first boot broke', 'infrastructure');
    io.progress('powering the first boot off');
    await session.powerOff(opts.accel === 'kvm' ? 60 : 180);
    if (!booted.vm.watcher.tail(10).some((l) => /reboot: Power down/.test(l))) {
      throw new StageError(
        'install',
        'the first boot of the image did not power off cleanly (its kernel never said "reboot: Power down"), so its file system may be incomplete',
        'infrastructure',
        booted.vm.watcher.tail(20),
      );
    }
    return Math.round((performance.now() - started) / 100) / 10;
  } finally {
    if (booted.vm.running) await booted.vm.shutdown('install stage ended');
  }
}
