import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config.js';
import type { Architecture } from '../debian.js';
import type { StageIo } from '../deps.js';
import { StageError } from '../errors.js';
import { DEBIAN_KEYRING_TOOL, keyringArgs, validityAptopts } from '../host/mirror.js';
import { chownToCaller } from '../host/exec.js';
import { findOnPath, ensureHostTools } from '../host/packages.js';
import { hostArchitecture, kernelPackage, serialConsole } from '../debian.js';
import { isoWeek } from '../iso-week.js';
import { cleanConsoleLine } from '../vm/console.js';
import { qemuBinary, qemuMachineArgv, qemuPackage } from '../vm/qemu.js';
import { BUILDER_PACKAGES, CUSTOMIZE_HOOK, JOB_RUNNER, JOB_UNIT, KPARTX_WRAPPER, UML_LAUNCHER } from './recipe.js';
import { readGuestFile } from '../vm/guest-file.js';

export const UML_KERNEL = '/usr/bin/linux.uml';
export const SLIRP_HELPER = '/usr/bin/libslirp-helper';

/** The builder's backend, chosen like debos' fakemachine chooses: native speed where possible. */
export type BuilderBackend = 'uml' | 'qemu-kvm' | 'qemu-tcg';

export const BACKEND_LABEL: Record<BuilderBackend, string> = {
  uml: 'User-Mode Linux',
  'qemu-kvm': 'QEMU/KVM',
  'qemu-tcg': 'QEMU/TCG',
};

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
  await ensureHostTools(deps, 'install', 'bootstrapping the builder image', [
    { command: 'mmdebstrap', package: 'mmdebstrap' },
    { command: 'mkfs.ext4', package: 'e2fsprogs' },
    DEBIAN_KEYRING_TOOL,
  ]);
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
    await deps.exec.run(argv, { stage: 'install', privileged: true, log: io.log, timeoutSeconds: 1800, signal: io.signal });
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

/**
 * Picks the builder backend: QEMU with KVM when the accel stage proved KVM usable. Without KVM,
 * QEMU/TCG when the host has two or more cores (multi-threaded TCG uses them all; on a 2-core host
 * the whole grml-debootstrap install took 730 s under TCG against 798 s under User-Mode Linux, whose
 * system calls cost more than its native execution saves), else User-Mode Linux, as debos'
 * fakemachine orders them (x86_64 only), else QEMU/TCG. `builder-backend` overrides the choice.
 */
export async function chooseBuilderBackend(
  io: StageIo,
  config: Config,
  accel: AccelVerdict | undefined,
  hostCpus = availableParallelism(),
): Promise<BuilderBackend> {
  const kvm = accel?.accel === 'kvm';
  const umlPossible = config.architecture === 'amd64' && hostArchitecture() === 'amd64';
  const want = config.builderBackend;
  if (want === 'kvm' && !kvm) {
    throw new StageError(
      'install',
      `builder-backend is kvm but KVM is not usable here (${accel?.summary ?? 'accel did not run'}); use auto, uml or qemu`,
      'infrastructure',
    );
  }
  if (want === 'uml' && !umlPossible) {
    throw new StageError(
      'install',
      `builder-backend is uml but User-Mode Linux builds ${config.architecture} systems only on x86_64 hosts with architecture amd64`,
      'infrastructure',
    );
  }
  if (want === 'uml' || (want === 'auto' && !kvm && umlPossible && hostCpus < 2)) {
    // Optional: Ubuntu 24.04 packages neither user-mode-linux nor libslirp-helper; QEMU/TCG then builds.
    const lacking = await ensureHostTools(io.deps, 'install', 'the User-Mode Linux builder', [
      { command: UML_KERNEL, package: 'user-mode-linux', optional: true },
      { command: SLIRP_HELPER, package: 'libslirp-helper', optional: true },
      { command: 'python3', package: 'python3-minimal', optional: true },
    ]);
    let why: string;
    if (lacking.length === 0 && findOnPath(UML_KERNEL) && findOnPath(SLIRP_HELPER)) {
      const probe = await probeUml(io);
      if (probe.usable) return 'uml';
      why = `User-Mode Linux does not work on this host: ${probe.detail}`;
    } else {
      why = `User-Mode Linux is not available here (missing ${lacking.map((t) => `${t.command} from ${t.package}`).join(', ')})`;
    }
    if (want === 'uml') throw new StageError('install', `builder-backend is uml but ${why}; use auto or qemu`, 'infrastructure');
    io.deps.reporter.warning(`${why}: the builder runs in QEMU/TCG`);
  }
  return kvm ? 'qemu-kvm' : 'qemu-tcg';
}

/** What the accel stage found (its result's verdict and summary), on which the backend choice depends. */
export interface AccelVerdict {
  accel: 'kvm' | 'tcg';
  summary: string;
}

/** What starting User-Mode Linux on this host showed: whether a program runs in it, and the evidence. */
export interface UmlProbe {
  usable: boolean;
  detail: string;
}

/**
 * Starts the UML kernel with the host's root read-only over hostfs and init=/bin/true: on a host where
 * UML works, true runs and exits 0, and the kernel reports init's exit with exitcode=0x00000000 (about a
 * second). Some hosts' CPUs break UML 6.1 before any program runs ("userspace - ptrace set fp regs failed,
 * errno = 14" and a SIGSEGV'd init, seen on a CI machine), which this finds before a job is started.
 */
export async function probeUml(io: StageIo, kernel = UML_KERNEL): Promise<UmlProbe> {
  const r = await io.deps.exec.run(
    [
      kernel,
      'mem=64M',
      'root=/dev/root',
      'rootfstype=hostfs',
      'rootflags=/',
      'ro',
      'init=/bin/true',
      'con=null',
      'con0=null,fd:1',
      'ssl=null',
      'quiet',
    ],
    { stage: 'install', check: false, timeoutSeconds: 60, log: io.log },
  );
  const out = `${r.stdout}\n${r.stderr}`;
  if (/Attempted to kill init! exitcode=0x00000000\b/.test(out)) return { usable: true, detail: '/bin/true ran and exited 0' };
  const evidence =
    out
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /failed|panic|exitcode|error/i.test(l) && !/find_iomem|ubd device/.test(l))
      .slice(0, 3)
      .join('; ') || `exit status ${r.exitCode}`;
  return { usable: false, detail: `a program does not run in it (${evidence.slice(0, 300)})` };
}

/** Where UML keeps its memory and copy-on-write files: tmpfs makes the guest's fsyncs nearly free. */
function fastScratchDir(fallback: string): string {
  try {
    const s = statfsSync('/dev/shm');
    if (s.bavail * s.bsize > 6 * 1024 ** 3) return '/dev/shm';
  } catch {
    /* no /dev/shm */
  }
  return fallback;
}

export interface BuilderJob {
  /** Host directory mounted at /job in the builder: job.sh and its inputs; results are written back there. */
  jobDir: string;
  /** Size of the scratch disk (/dev/vdb, /dev/ubdb) the job builds the image on. */
  scratchBytes: number;
  /**
   * A sparse host file attached as the third disk (/dev/vdc, /dev/ubdc): the job writes its result
   * there with dd instead of copying it through the shared directory (9p under TCG: 45 s for a 3 GiB image).
   */
  exportFile: string;
  timeoutSeconds: number;
}

/** The QEMU command line of a builder VM: the image's own kernel, job dir over 9p, console on stdout. */
export function qemuBuilderArgv(
  arch: Architecture,
  accel: 'kvm' | 'tcg',
  image: BuilderImage,
  files: { cow: string; scratch: string; exportFile: string; jobDir: string },
): string[] {
  return [
    ...qemuMachineArgv({ arch, accel, name: 'debian-vm-ci-builder', cpus: availableParallelism(), memoryMiB: 2048 }),
    '-chardev',
    'stdio,id=con0,signal=off',
    '-serial',
    'chardev:con0',
    '-drive',
    `file=${files.cow},if=virtio,format=qcow2,cache=unsafe`,
    '-drive',
    `file=${files.scratch},if=virtio,format=raw,cache=unsafe`,
    '-drive',
    `file=${files.exportFile},if=virtio,format=raw,cache=unsafe`,
    '-netdev',
    'user,id=net0',
    '-device',
    'virtio-net-pci,netdev=net0,romfile=',
    '-device',
    'virtio-rng-pci',
    '-virtfs',
    `local,path=${files.jobDir},mount_tag=dvcjob,security_model=none,id=dvcjob`,
    '-kernel',
    image.kernel,
    '-initrd',
    image.initrd,
    '-append',
    `root=/dev/vda rw console=${serialConsole(arch)},115200 net.ifnames=0 dvc.job=/job systemd.show_status=0 quiet`,
    '-no-reboot',
  ];
}

/**
 * Runs job.sh in a builder VM of the given backend; returns its exit status. Console lines go to
 * the stage log, the installer's milestones to progress, with a heartbeat in quiet phases.
 */
export async function runBuilderJob(
  io: StageIo,
  config: Config,
  backend: BuilderBackend,
  builder: BuilderImage,
  job: BuilderJob,
  work: string,
): Promise<number> {
  const { deps, progress } = io;
  const fast = fastScratchDir(work);
  const runDir = fast === work ? work : mkdtempSync(join(fast, 'dvc-builder-'));
  const runId = runDir === work ? undefined : deps.resources.add({ kind: 'dir', name: 'builder scratch', path: runDir });
  const scratch = join(runDir, 'scratch.img');
  try {
    await deps.exec.run(['truncate', '-s', String(job.scratchBytes), scratch], { stage: 'install' });
    await deps.exec.run(['mkfs.ext4', '-q', '-F', '-L', 'dvc-scratch', scratch], { stage: 'install', log: io.log });
    let argv: string[];
    if (backend === 'uml') {
      const launcher = join(work, 'uml-launcher.py');
      writeFileSync(launcher, UML_LAUNCHER);
      argv = [
        'python3',
        launcher,
        SLIRP_HELPER,
        UML_KERNEL,
        `ubd0=${join(runDir, 'root.cow')},${builder.disk}`,
        `ubd1=${scratch}`,
        `ubd2=${job.exportFile}`,
        'root=/dev/ubda',
        'rw',
        'mem=2G',
        'con=null',
        'con0=null,fd:1',
        'ssl=null',
        'vec0:transport=fd,fd=3,vec=0',
        `dvc.job=${job.jobDir}`,
        'systemd.show_status=0',
        'quiet',
      ];
    } else {
      await ensureHostTools(deps, 'install', 'the QEMU builder', [
        { command: qemuBinary(config.architecture), package: qemuPackage(config.architecture) },
        { command: 'qemu-img', package: 'qemu-utils' },
      ]);
      const cow = join(runDir, 'root.qcow2');
      await deps.exec.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', builder.disk, cow], {
        stage: 'install',
        log: io.log,
      });
      argv = qemuBuilderArgv(config.architecture, backend === 'qemu-kvm' ? 'kvm' : 'tcg', builder, {
        cow,
        scratch,
        exportFile: job.exportFile,
        jobDir: job.jobDir,
      });
    }
    let lastLine = '';
    let lastProgress = performance.now();
    const proc = deps.exec.start(`${backend} builder`, argv, {
      log: io.log,
      env: { ...deps.env, TMPDIR: runDir },
      onLine: (line) => {
        // Terminal control sequences the guest's getty and systemd write (CSI, OSC) are not text.
        const l = cleanConsoleLine(line).trim();
        if (l) lastLine = l;
        if (/^\[builder |^I: |^\* |^Executing stage |grml-debootstrap|Installation finished|^E: /.test(l)) {
          progress(l.slice(0, 160));
          lastProgress = performance.now();
        }
      },
    });
    // Never minutes of silence: the installer's quiet phases (dpkg, initramfs) still show a line a minute.
    const heartbeat = setInterval(() => {
      if (performance.now() - lastProgress >= 60_000) {
        progress(`still working: ${lastLine.slice(0, 140)}`);
        lastProgress = performance.now();
      }
    }, 10_000);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void proc.stop(5);
    }, job.timeoutSeconds * 1000);
    const onAbort = (): void => void proc.stop(5);
    io.signal.addEventListener('abort', onAbort, { once: true });
    const code = await proc.exited;
    clearTimeout(timer);
    clearInterval(heartbeat);
    io.signal.removeEventListener('abort', onAbort);
    if (timedOut) throw new StageError('install', `the builder did not finish within install-timeout (${job.timeoutSeconds}s)`);
    if (io.signal.aborted) throw new StageError('install', 'cancelled');
    // Written by the builder (untrusted: the project's installer ran there as root): a regular file with a number.
    const exitText = readGuestFile(join(job.jobDir, 'exit-code'), 16)?.toString('utf8').trim();
    if (exitText === undefined) {
      throw new StageError(
        'install',
        `the ${BACKEND_LABEL[backend]} builder stopped (status ${code}) before its job finished; see logs/install.log`,
      );
    }
    if (!/^\d{1,3}$/.test(exitText)) {
      throw new StageError(
        'install',
        `the builder's job left an exit status that is not one: ${JSON.stringify(exitText.slice(0, 20))}`,
      );
    }
    return Number(exitText);
  } finally {
    if (runDir !== work) {
      rmSync(runDir, { recursive: true, force: true });
      if (runId) deps.resources.remove(runId);
    }
  }
}
