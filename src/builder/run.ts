import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.js';
import { serialConsole, type Architecture } from '../debian.js';
import type { StageIo } from '../deps.js';
import { StageError } from '../errors.js';
import type { AptProxy } from '../host/apt-proxy.js';
import { ensureHostTools } from '../host/packages.js';
import { cleanConsoleLine } from '../vm/console.js';
import { readGuestFile } from '../vm/guest-file.js';
import { guestNetwork, userNetdev, type GuestNetwork } from '../vm/guest-network.js';
import { qemuBinary, qemuMachineArgv, qemuPackage } from '../vm/qemu.js';
import { BACKEND_LABEL, SLIRP_HELPER, UML_KERNEL, type BuilderBackend } from './backend.js';
import type { BuilderImage } from './image.js';
import { UML_LAUNCHER } from './recipe.js';

// Running a job (job.sh) in a builder VM of a given backend, with its scratch disk and console.

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

/** The builder's kernel gave up: "Kernel panic - not syncing: Fatal exception in interrupt" (seen under QEMU/TCG). */
export const BUILDER_PANIC = /Kernel panic - not syncing/;
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
  /** The run's apt proxy, started: served to a QEMU builder on a unix socket of its own. */
  proxy: AptProxy;
}

/**
 * The QEMU command line of a builder VM: the image's own kernel, job dir over 9p, console on stdout, `cpus` virtual
 * CPUs (vm-cpus, as the test VM).
 */
export function qemuBuilderArgv(
  arch: Architecture,
  accel: 'kvm' | 'tcg',
  image: BuilderImage,
  files: { cow: string; scratch: string; exportFile: string; jobDir: string; network: GuestNetwork },
  cpus: number,
): string[] {
  return [
    ...qemuMachineArgv({ arch, accel, name: 'debian-vm-ci-builder', cpus, memoryMiB: 2048 }),
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
    userNetdev('net0', files.network),
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
      // Walled: libslirp-helper in a network namespace of its own, where only the proxy's port leads anywhere.
      let proxySocket = '';
      if (config.vmNetwork === 'restricted') {
        proxySocket = join(runDir, 'apt-proxy.sock');
        await job.proxy.serveSocket(proxySocket);
      }
      argv = [
        'python3',
        launcher,
        SLIRP_HELPER,
        proxySocket,
        String(job.proxy.port),
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
      const network = guestNetwork(runDir, config.vmNetwork === 'restricted');
      await job.proxy.serveSocket(network.proxySocket);
      argv = qemuBuilderArgv(
        config.architecture,
        backend === 'qemu-kvm' ? 'kvm' : 'tcg',
        builder,
        {
          cow,
          scratch,
          exportFile: job.exportFile,
          jobDir: job.jobDir,
          network,
        },
        config.vmCpus,
      );
    }
    let lastLine = '';
    let lastProgress = performance.now();
    const recent: string[] = [];
    let panic: string | undefined;
    const proc = deps.exec.start(`${backend} builder`, argv, {
      log: io.log,
      env: { ...deps.env, TMPDIR: runDir },
      onLine: (line) => {
        // Terminal control sequences the guest's getty and systemd write (CSI, OSC) are not text.
        const l = cleanConsoleLine(line).trim();
        const net = /^debian-vm-ci-uml-network: (.*)$/.exec(l);
        if (net) {
          if (net[1].startsWith('not walled')) deps.reporter.warning(`the UML builder's network is ${net[1]}`);
          else progress(`the UML builder's network is ${net[1]}`);
          return;
        }
        if (l) {
          lastLine = l;
          recent.push(l.slice(0, 300));
          if (recent.length > 30) recent.shift();
        }
        // A panicked kernel never ends the job: stop the builder at once instead of waiting for install-timeout.
        if (!panic && BUILDER_PANIC.test(l)) {
          panic = l.slice(0, 200);
          void proc.stop(5);
        }
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
    if (panic) {
      throw new StageError(
        'install',
        `the ${BACKEND_LABEL[backend]} builder's kernel panicked, so it was stopped: "${panic}"`,
        'infrastructure',
        recent,
      );
    }
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
