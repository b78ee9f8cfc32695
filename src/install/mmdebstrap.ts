import { chmodSync, copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Config } from '../config.js';
import type { StageIo } from '../deps.js';
import type { OutputPaths } from '../paths.js';
import { StageError } from '../errors.js';
import { expiredIndex, keyringArgs, NO_VALID_UNTIL_CONF, validityAptopts } from '../host/mirror.js';
import { chownToCaller } from '../host/exec.js';
import { mmdebstrapPhases, prepareMmdebstrapHost } from '../host/mmdebstrap.js';
import { runningAsRoot } from '../host/process-tree.js';
import { makeScratchDir } from '../host/scratch.js';
import { mmdebstrapMode } from '../host/userns.js';
import { installBuiltInFirstBoot } from './first-boot.js';
import type { BootSpec } from '../results.js';
import { hostArchitecture, kernelPackage, serialConsole, type Architecture } from '../debian.js';

/** Packages every mmdebstrap image gets on top of the essential set: a kernel, systemd, udev and networking. */
export function basePackages(config: Config): string[] {
  // login and passwd are no longer Essential from trixie on: without them getty has nothing to run
  // and there is no chpasswd to set the root password with.
  return [
    kernelPackage(config.architecture),
    'login',
    'passwd',
    'systemd-sysv',
    'udev',
    'dbus',
    'procps',
    'iproute2',
    'kmod',
    'e2fsprogs',
  ];
}

/**
 * How long systemd waits for a device when the guest's CPU is emulated for another architecture than the host's:
 * an arm64 guest under TCG on amd64 took longer than systemd's default 90 s for udev's coldplug to show /dev/ttyAMA0
 * (measured twice), so its serial getty never started. An explicit `x-systemd.device-timeout` in fstab still wins.
 */
export const EMULATED_DEVICE_TIMEOUT_SECONDS = 300;

/**
 * The kernel command line of a direct-boot image: the serial console last, so it is /dev/console; for another
 * architecture than the host's, systemd's device timeout of EMULATED_DEVICE_TIMEOUT_SECONDS (systemd 254 and later).
 */
export function directBootAppend(config: Config, host: Architecture | undefined = hostArchitecture()): string {
  const append = `root=/dev/vda rw net.ifnames=0 console=tty0 console=${serialConsole(config.architecture)},115200`;
  return host === config.architecture
    ? append
    : `${append} systemd.default_device_timeout_sec=${EMULATED_DEVICE_TIMEOUT_SECONDS}`;
}

/** The files mmdebstrapArgv's hooks upload into the system, written into `files` (the password file mode 0600). */
export function writeInstallFiles(config: Config, files: string): void {
  mkdirSync(files, { recursive: true });
  writeFileSync(join(files, 'hostname'), `${config.hostname}\n`);
  writeFileSync(
    join(files, 'hosts'),
    `127.0.0.1 localhost\n127.0.1.1 ${config.hostname}\n::1 localhost ip6-localhost ip6-loopback\n`,
  );
  writeFileSync(join(files, 'fstab'), '/dev/vda / ext4 rw,errors=remount-ro 0 1\n');
  writeFileSync(join(files, 'dhcp.network'), '[Match]\nName=eth* en*\n\n[Network]\nDHCP=yes\n');
  writeFileSync(join(files, 'password'), `root:${config.password}\n`, { mode: 0o600 });
  writeFileSync(join(files, 'valid-until.conf'), NO_VALID_UNTIL_CONF);
  chmodSync(join(files, 'password'), 0o600);
}

/** The mmdebstrap command line: no input is ever part of a hook's shell text, only our own fixed paths. */
export function mmdebstrapArgv(
  config: Config,
  opts: { files: string; debs: string[]; proxyPort?: number; target: string; bootDir: string; unshare?: boolean },
): string[] {
  const include = [...basePackages(config), ...config.packages];
  // install-profile: default is mmdebstrap's own default variant (debootstrap: Priority important and
  // up); fast is the named shortcut of the apt variant, no recommends and dpkg's unsafe-io.
  const fast = config.installProfile === 'fast';
  const argv = [
    'mmdebstrap',
    ...(opts.unshare ? ['--mode=unshare'] : []),
    ...(fast ? ['--variant=apt'] : []),
    `--architectures=${config.architecture}`,
    ...keyringArgs(),
    `--include=${include.join(',')}`,
    ...(fast ? ['--dpkgopt=force-unsafe-io'] : []),
    '--aptopt=Acquire::Retries "3"',
    ...(fast ? ['--aptopt=APT::Install-Recommends "false"'] : []),
  ];
  if (opts.proxyPort) argv.push(`--aptopt=Acquire::http::Proxy "http://127.0.0.1:${opts.proxyPort}/"`);
  argv.push(...validityAptopts(config.checkValidUntil));
  argv.push(
    `--customize-hook=upload ${join(opts.files, 'hostname')} /etc/hostname`,
    `--customize-hook=upload ${join(opts.files, 'hosts')} /etc/hosts`,
    `--customize-hook=upload ${join(opts.files, 'fstab')} /etc/fstab`,
    `--customize-hook=upload ${join(opts.files, 'dhcp.network')} /etc/systemd/network/80-dhcp.network`,
    `--customize-hook=upload ${join(opts.files, 'password')} /root/.dvc-password`,
    `--customize-hook=chroot "$1" sh -ec 'trap "rm -f /root/.dvc-password" EXIT; chpasswd < /root/.dvc-password'`,
    '--customize-hook=chroot "$1" systemctl enable systemd-networkd',
  );
  if (opts.debs.length) {
    argv.push(`--customize-hook=copy-in ${opts.debs.join(' ')} /tmp`);
    argv.push(
      // Who root is where their maintainer scripts run: the uid map goes to the log (MAINTAINER_ROOT reads it).
      `--customize-hook=chroot "$1" sh -c "cat /proc/self/uid_map && apt-get install -y --allow-downgrades ${opts.debs.map((d) => `/tmp/${basename(d)}`).join(' ')} && rm -f /tmp/*.deb"`,
    );
  }
  // mmdebstrap leaves its --aptopt/--dpkgopt files in the system: the run's proxy address and
  // unsafe-io are not for the installed system, which gets Debian's defaults (and, for a snapshot
  // mirror, apt's permission to use expired Release files).
  argv.push('--customize-hook=rm -f "$1/etc/apt/apt.conf.d/99mmdebstrap" "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap"');
  if (!config.checkValidUntil) {
    argv.push(`--customize-hook=upload ${join(opts.files, 'valid-until.conf')} /etc/apt/apt.conf.d/90debian-vm-ci-valid-until`);
  }
  argv.push(`--customize-hook=copy-out /boot ${opts.bootDir}`);
  // installer-args: mmdebstrap's own options, each word one argument, before the suite and target.
  argv.push(...config.installerArgs);
  argv.push(config.release, opts.target);
  if (config.mirror) argv.push(config.mirror);
  return argv;
}

/** A line of /proc/self/uid_map that maps root: "0 100000 65536" in a user namespace, "0 0 4294967295" outside. */
export const MAINTAINER_ROOT = /^\s*0\s+(\d+)\s+\d+\s*$/;

/**
 * How the built packages' maintainer scripts (the project's code) run: as root of a user namespace, through
 * mmdebstrap's unshare mode as this user, whenever the host gives this user one; root there is a sub-uid that owns
 * nothing on the runner. Without a user namespace for this user, and as root, never as root of this host: the image
 * is made without them and they are installed from a first boot of it (first-boot.ts).
 */
async function builtPackagesWhere(io: StageIo, debs: readonly string[]): Promise<'none' | 'unshare' | 'first-boot'> {
  if (!debs.length) return 'none';
  // As root, mmdebstrap's unshare mode makes no user namespace: its chroot's root is this host's (uid map 0 0).
  const why = runningAsRoot()
    ? 'the action runs as root, where mmdebstrap makes no user namespace'
    : await mmdebstrapMode(io.deps.exec, 'install').then((m) => (m.mode === 'unshare' ? undefined : m.why));
  if (!why) return 'unshare';
  io.progress(`${why}; the built packages are installed from a first boot of the image instead, as root of the VM`);
  return 'first-boot';
}

async function mke2fsReadsTarballs(io: StageIo): Promise<boolean> {
  const r = await io.deps.exec.run(['mke2fs', '-V'], { stage: 'install', check: false });
  const m = /mke2fs (\d+)\.(\d+)(?:\.(\d+))?/.exec(r.stdout + r.stderr);
  if (!m) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
  return major > 1 || (major === 1 && (minor > 47 || (minor === 47 && patch >= 1)));
}

/**
 * installer: mmdebstrap — builds the system on the host with mmdebstrap into a tarball, then an ext4
 * file system image from it with `mkfs.ext4 -d` (no root, loop device or VM needed for that part).
 * The image has no partition table and no boot loader: QEMU boots it with the kernel and initrd
 * taken from its /boot (direct kernel boot), as debvm does.
 */
export async function installWithMmdebstrap(
  io: StageIo,
  config: Config,
  paths: OutputPaths,
  opts: { debs: string[]; proxyPort?: number; work: string; accel: 'kvm' | 'tcg' },
): Promise<{ boot: BootSpec; summary: string }> {
  const { deps } = io;
  await prepareMmdebstrapHost(io, config.architecture, 'the image');
  const where = await builtPackagesWhere(io, opts.debs);
  const unshare = where === 'unshare';
  // Unshare mode: the namespace's root (a sub-uid) makes mmdebstrap's temp dir, so it works in a 0755 directory.
  const subUidWork = unshare ? makeScratchDir(deps, 'install-unshare', { forSubUids: true }) : undefined;
  let done: { boot: BootSpec; summary: string };
  try {
    const debs = where === 'first-boot' ? [] : opts.debs;
    done = await buildImage(io, config, paths, { ...opts, debs, work: subUidWork?.path ?? opts.work, unshare });
  } finally {
    subUidWork?.release();
  }
  if (where !== 'first-boot') return done;
  const seconds = await installBuiltInFirstBoot(io, config, paths, {
    debs: opts.debs,
    boot: done.boot,
    accel: opts.accel,
    work: opts.work,
  });
  io.progress(`the built packages were installed from a first boot of the image in ${seconds}s`);
  return { ...done, summary: `${done.summary}, built packages installed from a first boot (${seconds}s)` };
}

async function buildImage(
  io: StageIo,
  config: Config,
  paths: OutputPaths,
  opts: { debs: string[]; proxyPort?: number; work: string; unshare: boolean },
): Promise<{ boot: BootSpec; summary: string }> {
  const { deps, progress } = io;
  const files = join(opts.work, 'files');
  const bootDir = join(opts.work, 'boot');
  writeInstallFiles(config, files);
  mkdirSync(bootDir, { recursive: true });
  // mke2fs reads a tarball from 1.47.1 on (no root needed); older ones (bookworm's 1.47.0) need a
  // directory, which only root can fill with the right owners.
  const fromTarball = await mke2fsReadsTarballs(io);
  // In unshare mode mmdebstrap writes a tarball; root unpacks it for an old mke2fs (data only, nothing runs).
  const target = join(opts.work, fromTarball || opts.unshare ? 'rootfs.tar' : 'rootfs');
  const rootfs = fromTarball ? target : join(opts.work, 'rootfs');
  progress(
    `mmdebstrap ${config.release} (${config.architecture}) with ${basePackages(config).length + config.packages.length} extra packages${opts.debs.length ? ` and ${opts.debs.length} built .deb(s)` : ''}`,
  );
  const phases = mmdebstrapPhases(progress);
  let maintainerRoot: number | undefined;
  const built = deps.exec.run(
    mmdebstrapArgv(config, { files, debs: opts.debs, proxyPort: opts.proxyPort, target, bootDir, unshare: opts.unshare }),
    {
      stage: 'install',
      privileged: !opts.unshare,
      // mmdebstrap's own temp files (its gpg home among them) inside our scratch dir: a killed run leaves none in /tmp.
      env: { ...deps.env, TMPDIR: opts.work },
      log: io.log,
      timeoutSeconds: config.installTimeout,
      signal: io.signal,
      onLine: (line) => {
        const mapped = MAINTAINER_ROOT.exec(line);
        if (mapped) maintainerRoot = Number(mapped[1]);
        phases(line);
      },
    },
  );
  await built.catch((e: unknown) => {
    // The project's package list or built .debs are at fault, not the infrastructure.
    const text = e instanceof StageError ? e.details.join('\n') : '';
    const expired = expiredIndex(text);
    if (e instanceof StageError && expired) {
      throw new StageError('install', expired, 'infrastructure', e.details);
    }
    const bad =
      /Unable to locate package \S+|has no installation candidate|unmet dependencies|Depends: .* but it is not installable/.exec(
        text,
      );
    if (e instanceof StageError && bad)
      throw new StageError('install', `the packages cannot be installed: ${bad[0]}`, 'test', e.details);
    throw e;
  });
  if (maintainerRoot !== undefined) {
    progress(
      maintainerRoot === 0
        ? "the built packages' maintainer scripts ran as root on this host"
        : `the built packages' maintainer scripts ran as root of a user namespace: uid ${maintainerRoot} on this host`,
    );
  }
  if (rootfs !== target) {
    await deps.exec.run(['mkdir', rootfs], { stage: 'install', privileged: true });
    await deps.exec.run(['tar', '--extract', '--preserve-permissions', '--numeric-owner', '-f', target, '-C', rootfs], {
      stage: 'install',
      privileged: true,
      log: io.log,
      timeoutSeconds: 600,
    });
  }
  progress(`mkfs.ext4 -d: ${config.imageSize} image from the root file system`);
  mkdirSync(paths.image, { recursive: true });
  await deps.exec.run(['truncate', '-s', String(config.imageSizeBytes), paths.imageFile], { stage: 'install', log: io.log });
  await deps.exec
    .run(['mkfs.ext4', '-q', '-F', '-L', 'dvc-root', '-d', rootfs, paths.imageFile], {
      stage: 'install',
      log: io.log,
      timeoutSeconds: 600,
      privileged: !fromTarball,
    })
    .catch((e: unknown) => {
      if (e instanceof StageError && /Could not allocate|No space|too small/i.test(e.details.join('\n'))) {
        throw new StageError(
          'install',
          `image-size ${config.imageSize} is too small for this ${config.release} system`,
          'test',
          e.details,
        );
      }
      throw e;
    });
  // The root-owned tree is removed with the same privileges it was made with.
  await deps.exec.run(['rm', '-rf', '--one-file-system', rootfs], { stage: 'install', privileged: true });
  // In root mode copy-out puts the directory itself into bootDir as root (the kernel is mode 0600 there);
  // in unshare mode mmdebstrap copies it out as the user running us already.
  if (!opts.unshare) await chownToCaller(deps.exec, [bootDir], { stage: 'install', log: io.log });
  const copiedBoot = join(bootDir, 'boot');
  const bootFiles = readdirSync(copiedBoot);
  const kernel = bootFiles.find((f) => /^vmlinu[xz]-/.test(f));
  const initrd = bootFiles.find((f) => /^initrd\.img-/.test(f));
  if (!kernel || !initrd) {
    throw new StageError('install', `the image's /boot has no kernel and initrd (found: ${bootFiles.join(', ') || 'nothing'})`);
  }
  copyFileSync(join(copiedBoot, kernel), join(paths.image, 'vmlinuz'));
  copyFileSync(join(copiedBoot, initrd), join(paths.image, 'initrd.img'));
  const boot: BootSpec = {
    kind: 'direct',
    kernel: join(paths.image, 'vmlinuz'),
    initrd: join(paths.image, 'initrd.img'),
    append: directBootAppend(config),
  };
  writeFileSync(
    join(paths.image, 'boot.json'),
    JSON.stringify({ ...boot, kernel: 'vmlinuz', initrd: 'initrd.img', root: 'qemu.img (ext4, no partition table)' }, null, 2) +
      '\n',
  );
  return { boot, summary: `mmdebstrap ${config.release}, kernel ${kernel.replace(/^vmlinu[xz]-/, '')}, direct kernel boot` };
}
