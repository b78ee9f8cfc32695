import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { kernelPackage, type Architecture } from '../debian.js';
import type { StageIo } from '../deps.js';
import { keyringArgs, validityAptopts } from '../host/mirror.js';
import { chownToCaller } from '../host/exec.js';
import { mmdebstrapPhases, prepareMmdebstrapHost } from '../host/mmdebstrap.js';
import { isoWeek } from '../iso-week.js';
import { BUILDER_PACKAGES, CUSTOMIZE_HOOK, JOB_RUNNER, JOB_UNIT, KPARTX_WRAPPER } from './recipe.js';

// The builder VM's image: its packages, its cache key, and building it once with mmdebstrap.

/** The builder's packages for an architecture: the recipe's list plus a kernel (and initramfs) for QEMU. */
export function builderPackages(arch: Architecture): string[] {
  return [...BUILDER_PACKAGES, kernelPackage(arch), 'initramfs-tools'];
}

/** The builder image: a disk (ext4, no partition table) and, for QEMU, the kernel and initrd from its /boot. */
export interface BuilderImage {
  disk: string;
  kernel: string;
  initrd: string;
}

function umlVersion(): string {
  try {
    return readdirSync('/usr/lib/uml/modules').sort().join('+') || 'none';
  } catch {
    return 'none';
  }
}

/** The cache key of a builder image: what it is made of, so a changed recipe never reuses a stale one. */
export function builderKey(hostRelease: string, arch: Architecture, mirror: string, week: string): string {
  const recipe = createHash('sha256')
    .update(
      [builderPackages(arch).join(','), JOB_RUNNER, JOB_UNIT, KPARTX_WRAPPER, CUSTOMIZE_HOOK, mirror, umlVersion()].join('\0'),
    )
    .digest('hex')
    .slice(0, 12);
  return `${hostRelease}-${arch}-${week}-${recipe}`;
}

/** The builder image's name for a run of this config in the week of `now`. */
export function builderImageKey(
  config: Pick<Config, 'hostRelease' | 'architecture' | 'mirror' | 'checkValidUntil'>,
  now: Date,
): string {
  const mirror = config.checkValidUntil ? config.mirror : `${config.mirror} (no Valid-Until check)`;
  return builderKey(config.hostRelease, config.architecture, mirror, isoWeek(now));
}

/**
 * The builder VM's disk: a Debian host-release system with grml-debootstrap, udev, systemd and a
 * kernel, built once with mmdebstrap and kept in the cache directory (and the GitHub cache). The
 * same image serves every backend: UML brings its own kernel and modules, QEMU boots the image's.
 */
export async function ensureBuilderImage(io: StageIo, config: Config, proxyPort: number, work: string): Promise<BuilderImage> {
  const { deps, progress } = io;
  const dir = join(deps.cacheDir, 'builder');
  const key = builderImageKey(config, new Date());
  const image = join(dir, `${key}.img`);
  const built: BuilderImage = { disk: image, kernel: join(dir, `${key}.vmlinuz`), initrd: join(dir, `${key}.initrd`) };
  if (existsSync(image) && existsSync(built.kernel) && existsSync(built.initrd)) {
    progress(`builder image from the cache: ${image}`);
    return built;
  }
  progress(`building the builder image (${config.hostRelease}, grml-debootstrap from the archive): not in the cache`);
  await prepareMmdebstrapHost(io, config.architecture, 'the builder image');
  const files = join(work, 'builder-files');
  mkdirSync(files, { recursive: true });
  writeFileSync(join(files, 'dvc-job-runner'), JOB_RUNNER);
  writeFileSync(join(files, 'kpartx'), KPARTX_WRAPPER);
  writeFileSync(join(files, 'dvc-job.service'), JOB_UNIT);
  writeFileSync(join(files, 'customize.sh'), CUSTOMIZE_HOOK, { mode: 0o755 });
  const rootfs = join(work, 'builder-rootfs');
  const bootOut = join(work, 'builder-boot');
  mkdirSync(bootOut, { recursive: true });
  const argv = [
    'mmdebstrap',
    '--mode=root',
    '--variant=apt',
    `--architectures=${config.architecture}`,
    ...keyringArgs(),
    `--include=${builderPackages(config.architecture).join(',')}`,
    `--aptopt=Acquire::http::Proxy "http://127.0.0.1:${proxyPort}/"`,
    '--aptopt=APT::Install-Recommends "false"',
    ...validityAptopts(config.checkValidUntil),
    '--dpkgopt=force-unsafe-io',
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    '--dpkgopt=path-exclude=/usr/share/locale/*',
    `--customize-hook=${join(files, 'customize.sh')} "$1" ${files} ${bootOut}`,
    config.hostRelease,
    rootfs,
    ...(config.mirror ? [config.mirror] : []),
  ];
  try {
    await deps.exec.run(argv, {
      stage: 'install',
      privileged: true,
      log: io.log,
      // Part of the install stage: under emulation (an arm64 builder on amd64) it takes many minutes.
      timeoutSeconds: config.installTimeout,
      signal: io.signal,
      onLine: mmdebstrapPhases(progress),
    });
    mkdirSync(dir, { recursive: true });
    const partial = `${image}.${process.pid}.partial`;
    await deps.exec.run(['mkfs.ext4', '-q', '-F', '-L', 'dvc-builder', '-d', rootfs, partial, '4G'], {
      stage: 'install',
      privileged: true,
      log: io.log,
      timeoutSeconds: 600,
    });
    // The kernel is mode 0600 in the image; the hook copied it out as root.
    await chownToCaller(deps.exec, [partial, bootOut], { stage: 'install', log: io.log });
    renameSync(join(bootOut, 'vmlinuz'), built.kernel);
    renameSync(join(bootOut, 'initrd.img'), built.initrd);
    renameSync(partial, image);
  } finally {
    await deps.exec.run(['rm', '-rf', '--one-file-system', rootfs], { stage: 'install', privileged: true, check: false });
  }
  for (const old of readdirSync(dir)) {
    if (old.startsWith(`${config.hostRelease}-${config.architecture}-`) && !old.startsWith(`${key}.`))
      rmSync(join(dir, old), { force: true });
  }
  return built;
}
