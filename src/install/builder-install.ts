import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Config } from '../config.js';
import type { StageContext } from '../context.js';
import { StageError } from '../errors.js';
import { BACKEND_LABEL, chooseBuilderBackend, ensureBuilderImage, runBuilderJob } from '../builder/builder.js';
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
  ctx: StageContext,
  opts: { debs: string[]; proxyPort: number; work: string },
): Promise<{ boot: BootSpec; summary: string; isolation: string }> {
  const { config, deps, paths, progress } = ctx;
  if (config.isolation === 'chroot') {
    throw new StageError('install', 'isolation: chroot is not available yet; use isolation: vm (or auto)');
  }
  const backend = await chooseBuilderBackend(ctx);
  const builderImage = await ensureBuilderImage(ctx, opts.proxyPort, opts.work);
  const jobDir = join(paths.work, 'builder-job');
  mkdirSync(join(jobDir, 'debs'), { recursive: true });
  const jobId = deps.resources.add({ kind: 'dir', name: 'builder job', path: jobDir });
  try {
    writeFileSync(join(jobDir, 'job.sh'), INSTALL_JOB);
    writeFileSync(join(jobDir, 'params'), jobParams(config, `http://10.0.2.2:${opts.proxyPort}/`));
    writeFileSync(join(jobDir, 'password'), config.password, { mode: 0o600 });
    // fast: the lean list replaces grml-debootstrap's; default: only the packages input, added to its own.
    const packages = config.installProfile === 'fast' ? grmlPackageList(config) : [...config.packages];
    writeFileSync(join(jobDir, 'packages'), packages.length ? packages.join('\n') + '\n' : '');
    writeFileSync(join(jobDir, 'installer-args'), config.installerArgs.map((a) => `${a}\0`).join(''));
    writeFileSync(join(jobDir, 'install-command'), config.installCommand);
    // The project's own grml-debootstrap becomes the installer; other packages are not installed by it.
    for (const deb of opts.debs.filter((d) => basename(d).startsWith('grml-debootstrap_')))
      copyFileSync(deb, join(jobDir, 'debs', basename(deb)));
    const t0 = performance.now();
    const where = `a ${BACKEND_LABEL[backend]} builder`;
    progress(`${config.installer} for ${config.release} in ${where} (${config.hostRelease}); the console follows`);
    const exportFile = join(jobDir, 'export.img');
    writeFileSync(exportFile, '');
    truncateSync(exportFile, config.imageSizeBytes);
    const status = await runBuilderJob(
      ctx,
      backend,
      builderImage,
      {
        jobDir,
        scratchBytes: config.imageSizeBytes * 2 + 2 * 1024 ** 3,
        exportFile,
        timeoutSeconds: config.installTimeout,
      },
      opts.work,
    );
    const seconds = Math.round((performance.now() - t0) / 1000);
    const jobLog = existsSync(join(jobDir, 'job.log')) ? readFileSync(join(jobDir, 'job.log'), 'utf8') : '';
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
    const sizeFile = join(jobDir, 'qemu.img.size');
    mkdirSync(paths.image, { recursive: true });
    if (existsSync(sizeFile)) {
      truncateSync(exportFile, Number(readFileSync(sizeFile, 'utf8').trim()));
      renameSync(exportFile, paths.imageFile);
    } else if (existsSync(join(jobDir, 'qemu.img'))) {
      renameSync(join(jobDir, 'qemu.img'), paths.imageFile);
    } else {
      throw new StageError('install', `${config.installer} reported success but produced no image`, 'test');
    }
    // The package list grml-debootstrap installed, for the reports (written by the guest: a regular file only).
    const listed = join(jobDir, 'installer-packages');
    if (existsSync(listed) && lstatSync(listed).isFile() && lstatSync(listed).size < 1024 ** 2) {
      copyFileSync(listed, join(paths.logs, 'installer-packages.txt'));
    }
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
