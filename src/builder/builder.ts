import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StageContext } from '../context.js';
import { StageError } from '../errors.js';
import { findOnPath, ensureHostTools } from '../host/packages.js';
import { isoWeek } from '../package/build-env.js';
import { BUILDER_PACKAGES, CUSTOMIZE_HOOK, JOB_RUNNER, JOB_UNIT, KPARTX_WRAPPER, UML_LAUNCHER } from './recipe.js';

export const UML_KERNEL = '/usr/bin/linux.uml';
export const SLIRP_HELPER = '/usr/bin/libslirp-helper';

/** The builder's backend, chosen like debos' fakemachine chooses: native speed where possible. */
export type BuilderBackend = 'uml' | 'qemu-kvm' | 'qemu-tcg';

function umlVersion(): string {
  try {
    return readdirSync('/usr/lib/uml/modules').sort().join('+') || 'none';
  } catch {
    return 'none';
  }
}

/** The cache key of a builder image: what it is made of, so a changed recipe never reuses a stale one. */
export function builderKey(hostRelease: string, arch: string, mirror: string, week: string): string {
  const recipe = createHash('sha256')
    .update([BUILDER_PACKAGES.join(','), JOB_RUNNER, JOB_UNIT, KPARTX_WRAPPER, CUSTOMIZE_HOOK, mirror, umlVersion()].join('\0'))
    .digest('hex')
    .slice(0, 12);
  return `${hostRelease}-${arch}-${week}-${recipe}`;
}

/**
 * The builder VM's disk: a Debian host-release system with grml-debootstrap, udev and systemd,
 * built once with mmdebstrap and kept in the cache directory (and the GitHub cache).
 */
export async function ensureBuilderImage(ctx: StageContext, proxyPort: number, work: string): Promise<string> {
  const { config, deps, progress } = ctx;
  const dir = join(deps.cacheDir, 'builder');
  const week = isoWeek(new Date());
  const key = builderKey(
    config.hostRelease,
    config.architecture,
    config.mirror,
    `${week.year}w${String(week.week).padStart(2, '0')}`,
  );
  const image = join(dir, `${key}.img`);
  if (existsSync(image)) {
    progress(`builder image from the cache: ${image}`);
    return image;
  }
  progress(`building the builder image (${config.hostRelease}, grml-debootstrap from the archive): not in the cache`);
  const files = join(work, 'builder-files');
  mkdirSync(files, { recursive: true });
  writeFileSync(join(files, 'dvc-job-runner'), JOB_RUNNER);
  writeFileSync(join(files, 'kpartx'), KPARTX_WRAPPER);
  writeFileSync(join(files, 'dvc-job.service'), JOB_UNIT);
  writeFileSync(join(files, 'customize.sh'), CUSTOMIZE_HOOK, { mode: 0o755 });
  const rootfs = join(work, 'builder-rootfs');
  const argv = [
    'mmdebstrap',
    '--mode=root',
    '--variant=apt',
    `--architectures=${config.architecture}`,
    `--include=${BUILDER_PACKAGES.join(',')}`,
    `--aptopt=Acquire::http::Proxy "http://127.0.0.1:${proxyPort}/"`,
    '--aptopt=APT::Install-Recommends "false"',
    '--dpkgopt=force-unsafe-io',
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    '--dpkgopt=path-exclude=/usr/share/locale/*',
    `--customize-hook=${join(files, 'customize.sh')} "$1" ${files}`,
    config.hostRelease,
    rootfs,
    ...(config.mirror ? [config.mirror] : []),
  ];
  try {
    await deps.exec.run(argv, { stage: 'install', privileged: true, log: ctx.log, timeoutSeconds: 1800, signal: ctx.signal });
    mkdirSync(dir, { recursive: true });
    const partial = `${image}.partial`;
    await deps.exec.run(['mkfs.ext4', '-q', '-F', '-L', 'dvc-builder', '-d', rootfs, partial, '4G'], {
      stage: 'install',
      privileged: true,
      log: ctx.log,
      timeoutSeconds: 600,
    });
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      await deps.exec.run(['chown', `${process.getuid()}`, partial], { stage: 'install', privileged: true });
    }
    renameSync(partial, image);
  } finally {
    await deps.exec.run(['rm', '-rf', '--one-file-system', rootfs], { stage: 'install', privileged: true, check: false });
  }
  for (const old of readdirSync(dir)) {
    if (old.startsWith(`${config.hostRelease}-${config.architecture}-`) && old !== `${key}.img`)
      rmSync(join(dir, old), { force: true });
  }
  return image;
}

/**
 * Picks the builder backend. User-Mode Linux runs the builder's code natively without KVM or root,
 * so it is the backend wherever it exists (x86_64). A QEMU backend (faster with KVM, or the TCG
 * fallback on other architectures) is not built yet: there the install stage says so.
 */
export async function chooseBuilderBackend(ctx: StageContext): Promise<BuilderBackend> {
  if (ctx.config.architecture === 'amd64' && process.arch === 'x64') {
    await ensureHostTools(ctx.deps, 'install', 'the User-Mode Linux builder', [
      { command: UML_KERNEL, package: 'user-mode-linux' },
      { command: SLIRP_HELPER, package: 'libslirp-helper' },
      { command: 'python3', package: 'python3-minimal' },
    ]);
    if (findOnPath(UML_KERNEL) && findOnPath(SLIRP_HELPER)) return 'uml';
  }
  return ctx.results.accel?.accel === 'kvm' ? 'qemu-kvm' : 'qemu-tcg';
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
  /** Size of the scratch disk (/dev/ubdb) the job builds the image on. */
  scratchBytes: number;
  timeoutSeconds: number;
}

/** Runs job.sh in a UML builder; returns its exit status. Console lines go to the stage log and progress. */
export async function runUmlJob(ctx: StageContext, builderImage: string, job: BuilderJob, work: string): Promise<number> {
  const { deps, progress } = ctx;
  const fast = fastScratchDir(work);
  const runDir = fast === work ? work : join(fast, `dvc-uml-${process.pid}-${Date.now()}`);
  mkdirSync(runDir, { recursive: true });
  const runId = runDir === work ? undefined : deps.resources.add({ kind: 'dir', name: 'uml scratch', path: runDir });
  const scratch = join(runDir, 'scratch.img');
  const cow = join(runDir, 'root.cow');
  const launcher = join(work, 'uml-launcher.py');
  writeFileSync(launcher, UML_LAUNCHER);
  try {
    await deps.exec.run(['truncate', '-s', String(job.scratchBytes), scratch], { stage: 'install' });
    await deps.exec.run(['mkfs.ext4', '-q', '-F', '-L', 'dvc-scratch', scratch], { stage: 'install', log: ctx.log });
    const argv = [
      'python3',
      launcher,
      SLIRP_HELPER,
      UML_KERNEL,
      `ubd0=${cow},${builderImage}`,
      `ubd1=${scratch}`,
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
    let lastLine = '';
    let lastProgress = performance.now();
    const proc = deps.exec.start('uml builder', argv, {
      log: ctx.log,
      env: { ...deps.env, TMPDIR: runDir },
      onLine: (line) => {
        const l = line.replace(/\x1b\[[0-9;]*m/g, '').trim(); // eslint-disable-line no-control-regex
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
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const code = await proc.exited;
    clearTimeout(timer);
    clearInterval(heartbeat);
    ctx.signal.removeEventListener('abort', onAbort);
    if (timedOut) throw new StageError('install', `the builder did not finish within install-timeout (${job.timeoutSeconds}s)`);
    if (ctx.signal.aborted) throw new StageError('install', 'cancelled');
    const exitFile = join(job.jobDir, 'exit-code');
    if (!existsSync(exitFile)) {
      throw new StageError('install', `the UML builder stopped (status ${code}) before its job finished; see logs/install.log`);
    }
    return Number(readFileSync(exitFile, 'utf8').trim());
  } finally {
    if (runDir !== work) {
      rmSync(runDir, { recursive: true, force: true });
      if (runId) deps.resources.remove(runId);
    }
  }
}
