import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { readGuestFile } from '../vm/guest-file.js';
import { GUEST_PROXY_URL } from '../vm/guest-network.js';
import type { AptProxy } from '../host/apt-proxy.js';
import { basename, join } from 'node:path';
import type { Config } from '../config.js';
import type { StageIo } from '../deps.js';
import type { OutputPaths } from '../paths.js';
import { StageError } from '../errors.js';
import { BACKEND_LABEL, chooseBuilderBackend, type AccelVerdict } from '../builder/backend.js';
import { ensureBuilderImage } from '../builder/image.js';
import { runBuilderJob } from '../builder/run.js';
import { shellQuote } from '../host/shell.js';
import type { BootSpec } from '../results.js';
import { tail } from '../host/exec.js';
import { expiredIndex } from '../host/mirror.js';
import { dhcpClientPackage, kernelPackage, serialConsole } from '../debian.js';

/**
 * install-profile: fast — the lean package list handed to grml-debootstrap (--packages, with --nokernel):
 * a kernel without headers and firmware, and what a booted system needs to be tested. `packages` adds to it.
 */
export function grmlPackageList(config: Config): string[] {
  return [
    kernelPackage(config.architecture),
    'initramfs-tools',
    'systemd-sysv',
    'udev',
    'ifupdown',
    dhcpClientPackage(config.release),
    'e2fsprogs',
    'zstd',
    'login',
    'passwd',
    ...config.packages,
  ];
}

/** Kernel command line appended by grml-debootstrap: the serial console last, so that it is /dev/console. */
export function grmlBootAppend(config: Config): string {
  return `console=tty0 console=${serialConsole(config.architecture)},115200 net.ifnames=0`;
}

/**
 * job.sh: runs in the builder with /job mounted from the host. The image ends up on the export disk
 * (its size in /job/qemu.img.size), or in /job/qemu.img when it is larger than that disk.
 */
export const INSTALL_JOB = readFileSync(new URL('./builder-job.sh', import.meta.url), 'utf8');

export function jobParams(config: Config, proxyUrl: string): string {
  const params: Record<string, string> = {
    INSTALLER: config.installer,
    RELEASE: config.release,
    MIRROR: config.mirror,
    HOSTNAME: config.hostname,
    VMSIZE: config.imageSize,
    VMEFI: config.firmware === 'uefi' ? '1' : '0',
    BOOTAPPEND: grmlBootAppend(config),
    PROFILE: config.installProfile,
    PROXY: proxyUrl,
    CHECK_VALID_UNTIL: config.checkValidUntil ? '1' : '0',
  };
  return (
    Object.entries(params)
      .map(([k, v]) => `${k}=${shellQuote(v)}`)
      .join('\n') + '\n'
  );
}

/**
 * installer: grml-debootstrap and command — run inside a throwaway builder VM (never on the runner),
 * with the image built on the builder's scratch disk and copied back through the job directory.
 */
export async function installWithBuilder(
  io: StageIo,
  config: Config,
  paths: OutputPaths,
  opts: { debs: string[]; proxy: AptProxy; work: string; accel: AccelVerdict | undefined },
): Promise<{ boot: BootSpec; summary: string; isolation: string }> {
  const { deps, progress } = io;
  if (config.isolation === 'chroot') {
    throw new StageError('install', 'isolation: chroot is not available yet; use isolation: vm (or auto)');
  }
  const backend = await chooseBuilderBackend(io, config, opts.accel);
  const builderImage = await ensureBuilderImage(io, config, opts.proxy.port, opts.work);
  const jobDir = join(paths.work, 'builder-job');
  mkdirSync(join(jobDir, 'debs'), { recursive: true });
  const jobId = deps.resources.add({ kind: 'dir', name: 'builder job', path: jobDir });
  try {
    writeFileSync(join(jobDir, 'job.sh'), INSTALL_JOB);
    writeFileSync(
      join(jobDir, 'params'),
      jobParams(
        config,
        // UML's network (libslirp-helper) has no forward into a walled network: the proxy is the host's there.
        backend === 'uml' ? `http://10.0.2.2:${opts.proxy.port}/` : GUEST_PROXY_URL,
      ),
    );
    writeFileSync(join(jobDir, 'password'), config.password, { mode: 0o600 });
    // fast: the lean list replaces grml-debootstrap's; default: only the packages input, added to its own.
    const packages = config.installProfile === 'fast' ? grmlPackageList(config) : [...config.packages];
    writeFileSync(join(jobDir, 'packages'), packages.length ? packages.join('\n') + '\n' : '');
    writeFileSync(join(jobDir, 'installer-args'), config.installerArgs.map((a) => `${a}\0`).join(''));
    writeFileSync(join(jobDir, 'install-command'), config.installCommand);
    // The project's own grml-debootstrap becomes the installer; install-built-packages puts the built
    // packages into the image (grml-debootstrap only: job.sh installs them in its chroot stage).
    for (const deb of opts.debs.filter((d) => basename(d).startsWith('grml-debootstrap_')))
      copyFileSync(deb, join(jobDir, 'debs', basename(deb)));
    if (config.installBuiltPackages && config.installer === 'grml-debootstrap') {
      mkdirSync(join(jobDir, 'install-debs'));
      for (const deb of opts.debs) copyFileSync(deb, join(jobDir, 'install-debs', basename(deb)));
    }
    const t0 = performance.now();
    const where = `a ${BACKEND_LABEL[backend]} builder`;
    progress(`${config.installer} for ${config.release} in ${where} (${config.hostRelease}); the console follows`);
    const exportFile = join(jobDir, 'export.img');
    writeFileSync(exportFile, '');
    truncateSync(exportFile, config.imageSizeBytes);
    const status = await runBuilderJob(
      io,
      config,
      backend,
      builderImage,
      {
        jobDir,
        scratchBytes: config.imageSizeBytes * 2 + 2 * 1024 ** 3,
        exportFile,
        timeoutSeconds: config.installTimeout,
        proxy: opts.proxy,
      },
      opts.work,
    );
    const seconds = Math.round((performance.now() - t0) / 1000);
    // The job directory is written by the builder, where the project's installer ran as root: read as untrusted.
    const jobLog = readGuestFile(join(jobDir, 'job.log'))?.toString('utf8') ?? '';
    if (status !== 0) {
      const lines = tail(deps.reporter.redact(jobLog), 30);
      const expired = expiredIndex(jobLog);
      const why = expired
        ? `${expired}; ${config.installer} exited with status ${status}`
        : status === 90
          ? 'the builder could not mount its scratch disk'
          : status === 91
            ? "the project's grml-debootstrap package could not be installed in the builder"
            : `${config.installer} exited with status ${status}`;
      throw new StageError(
        'install',
        `${why} after ${seconds}s (last lines below; full log in logs/install.log)`,
        expired ? 'infrastructure' : 'test',
        lines,
      );
    }
    mkdirSync(paths.image, { recursive: true });
    takeBuilderImage(jobDir, exportFile, paths.imageFile, config.installer);
    // The package list grml-debootstrap installed, for the reports (written by the guest: a regular file only).
    const listed = join(jobDir, 'installer-packages');
    const packageList = readGuestFile(listed, 1024 ** 2);
    if (packageList) writeFileSync(join(paths.logs, 'installer-packages.txt'), packageList);
    const profile = config.installer === 'grml-debootstrap' ? ` (install-profile: ${config.installProfile})` : '';
    return {
      boot: { kind: 'disk' },
      summary: `${config.installer}${profile} in ${where}, ${seconds}s`,
      isolation: `vm (${backend})`,
    };
  } finally {
    await deps.exec.run(['rm', '-rf', '--one-file-system', jobDir], { stage: 'install', check: false });
    deps.resources.remove(jobId);
  }
}

/**
 * Moves the image the builder's job made to `imageFile`: from the export disk, cut to the size the job wrote
 * (QEMU), or the job directory's qemu.img (UML's hostfs). The job directory is the builder's, where the project's
 * installer ran as root: the size must be a number no larger than the disk, and qemu.img a regular file.
 */
export function takeBuilderImage(jobDir: string, exportFile: string, imageFile: string, installer: string): void {
  const sizeText = readGuestFile(join(jobDir, 'qemu.img.size'), 32)?.toString('utf8').trim();
  const inJobDir = join(jobDir, 'qemu.img');
  if (sizeText !== undefined) {
    // The size the job wrote to the export disk: a number, and no more than the disk holds.
    const size = /^\d{1,16}$/.test(sizeText) ? Number(sizeText) : NaN;
    if (!(size > 0 && size <= lstatSync(exportFile).size)) {
      throw new StageError(
        'install',
        `the builder reported an image size that is not one: ${JSON.stringify(sizeText.slice(0, 40))}`,
      );
    }
    truncateSync(exportFile, size);
    renameSync(exportFile, imageFile);
  } else if (existsSync(inJobDir) && lstatSync(inJobDir).isFile()) {
    // A regular file, never a link the builder planted (renamed, it would point QEMU and publish at a host file).
    renameSync(inJobDir, imageFile);
  } else if (existsSync(inJobDir)) {
    throw new StageError('install', `the builder left qemu.img as something other than a regular file`);
  } else {
    throw new StageError('install', `${installer} reported success but produced no image`, 'test');
  }
}
