/**
 * A script of ours run as root in the booted guest, with apt going through the run's caching proxy: what the
 * autopkgtest and lifecycle stages do inside the VM. The script and its input travel through the share; its
 * output is followed into the stage log while it runs.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { copySourceTree } from '../package/source-tree.js';
import type { Config } from '../config.js';
import type { StageIo } from '../deps.js';
import type { BootResult, StageName } from '../results.js';
import { StageError } from '../errors.js';
import { AptProxy } from '../host/apt-proxy.js';
import { shellQuote } from '../host/shell.js';
import { ConsoleFloodError, type GuestVm } from './guest.js';
import { GUEST_PROXY_URL } from './guest-network.js';
import { commandLine, GuestSession, GuestSessionError, type CommandResult } from './session.js';

/** Where the guest's apt learns of the run's proxy. */
export const GUEST_APT_PROXY_CONF = '/etc/apt/apt.conf.d/99zz-debian-vm-ci-proxy';

export interface GuestJob {
  /** The session, for reading what the script left in the share. */
  session: GuestSession;
  run: CommandResult;
  /** The last upstream error of the apt proxy, if any: names the mirror trouble behind an apt failure. */
  proxyTrouble?: string;
}

/**
 * The input tarball of a guest job, in `work`: `debs/` (the built packages) and, when given, `source/` (a copy of
 * the project without .git, the output and cache directories).
 */
export async function packGuestInput(
  io: StageIo,
  stage: StageName,
  config: Config,
  work: string,
  parts: { debs: readonly string[]; source?: string },
): Promise<string> {
  const names = ['debs'];
  mkdirSync(join(work, 'debs'));
  for (const deb of parts.debs) copyFileSync(deb, join(work, 'debs', basename(deb)));
  if (parts.source) {
    copySourceTree(parts.source, join(work, 'source'), [config.outputDir, io.deps.cacheDir, work]);
    names.push('source');
  }
  const tarball = join(work, 'input.tar');
  await io.deps.exec.run(['tar', '-c', '-f', tarball, '-C', work, ...names], { stage, log: io.log });
  return tarball;
}

export async function runGuestJob(
  io: StageIo,
  stage: StageName,
  config: Config,
  /** The running test VM and its share: the boot stage's result, or a VM of the caller's own. */
  booted: Pick<BootResult, 'vm' | 'shareDir'> | undefined,
  job: {
    /** The script's name in the share and its text. */
    script: { name: string; text: string };
    /** Files put into the share before it runs: share name -> host file. */
    inputs: Record<string, string>;
    /** The script's arguments. */
    args: string[];
    timeoutSeconds: number;
    what: string;
    /** A progress line for the job log from a line of the script's output, beside our scripts' own milestones. */
    progressLine?: (line: string) => string | undefined;
  },
): Promise<GuestJob> {
  const { deps, progress, log } = io;
  if (!booted) throw new StageError(stage, 'there is no booted VM');
  const proxy = AptProxy.forMirror(join(deps.cacheDir, 'apt'), config.mirror);
  try {
    await proxy.start();
    const net = booted.vm.spec.network;
    await proxy.serveSocket(net.proxySocket);
    progress(
      `apt proxy with cache ${join(deps.cacheDir, 'apt')}, ${GUEST_PROXY_URL} in the guest (its network is ${net.restricted ? 'walled to the proxy' : 'open: vm-network'})`,
    );
    const session = await GuestSession.shared(booted.vm, {
      password: config.password,
      shareDir: booted.shareDir,
      signal: io.signal,
      progress,
    });
    for (const [name, file] of Object.entries(job.inputs)) session.put(name, { file });
    session.put(job.script.name, { content: job.script.text }, 0o755);
    // apt in the guest through the proxy, after mmdebstrap's and the installer's own configuration so this one
    // counts; the lifecycle script leaves this file out of its path lists.
    const proxyConf = `Acquire::http::Proxy "${GUEST_PROXY_URL}";`;
    const command = [
      `printf '%s\\n' ${shellQuote(proxyConf)} > ${GUEST_APT_PROXY_CONF}`,
      commandLine(['sh', `./${job.script.name}`, ...job.args]),
    ].join(' && ');
    const run = await session.run(command, {
      timeoutSeconds: job.timeoutSeconds,
      what: job.what,
      onOutput: (line) => {
        log.line(line);
        // Our scripts' milestones, and autopkgtest's own ("autopkgtest [12:00:01]: test pass: [-----").
        if (/^(debian-vm-ci: |autopkgtest \[)/.test(line)) progress(line.replace(/^debian-vm-ci: /, ''));
        else {
          const extra = job.progressLine?.(line);
          if (extra) progress(extra);
        }
      },
    });
    return { session, run, proxyTrouble: proxy.stats.errors.at(-1) };
  } catch (e) {
    if (e instanceof StageError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    if (e instanceof ConsoleFloodError)
      throw new StageError(
        stage,
        message,
        'test',
        booted.vm.watcher.tail(3).map((l) => l.slice(0, 200)),
      );
    throw new StageError(
      stage,
      e instanceof GuestSessionError ? message : `running ${job.what} in the guest failed: ${message}`,
      'infrastructure',
      booted.vm.watcher.tail(20),
    );
  } finally {
    await proxy.stop();
  }
}

/**
 * The stage's error when a guest job of ours could not do its work (apt, its input, the script itself): what the
 * guest planted in the share, if anything (a test failure, said first), else an infrastructure error with the apt
 * proxy's last upstream error and the job's last 20 output lines.
 */
export function guestJobError(stage: StageName, job: GuestJob, why: string): StageError {
  return (
    tamperError(stage, job.session.takeTampered()) ??
    new StageError(
      stage,
      `${why}${job.proxyTrouble ? ` (the apt proxy: ${job.proxyTrouble})` : ''}`,
      'infrastructure',
      job.run.stdout.split(/\r?\n/).slice(-20),
    )
  );
}

/**
 * What the guest planted in the share where the host reads its output (GuestSession.takeTampered), as the stage's
 * test failure; undefined when there was nothing. Our guest scripts write only regular files there, so a link, FIFO or
 * directory was put there by the system under test (a maintainer script, a unit), which could hide a report that way.
 */
export function tamperError(stage: StageName, tampered: readonly string[], partial?: unknown): StageError | undefined {
  if (!tampered.length) return undefined;
  const listed = `${tampered.slice(0, 5).join(', ')}${tampered.length > 5 ? ', …' : ''}`;
  return new StageError(
    stage,
    `something in the guest planted ${tampered.length} thing(s) in the share where the host reads the guest's output, none followed or read: ${listed}`,
    'test',
    tampered,
    partial,
  );
}

/**
 * A clean power-off through the guest stages' session, when one is open and working; otherwise whoever started
 * QEMU stops it. A guest that does not power off is a warning, not a verdict: the stage's own result stands.
 * With `diagnostics` (a directory), the guest's diagnostics are gathered there first, unless that directory
 * exists already (goss gathered them): `diagnostics: failure` after a stage in the guest failed.
 */
export async function powerOffGuest(io: StageIo, vm: GuestVm | undefined, kvm: boolean, diagnostics?: string): Promise<void> {
  const session = vm && GuestSession.existing(vm);
  // A cancelled run does not wait for the guest: QEMU is stopped at once.
  if (!session || io.signal.aborted) return;
  if (diagnostics && !existsSync(diagnostics)) {
    try {
      io.progress(`diagnostics gathered in ${await session.diagnostics(diagnostics, kvm ? 120 : 600)}s after the failure`);
      const planted = session.takeTampered();
      if (planted.length) {
        io.deps.reporter.warning(
          `something in the guest planted ${planted.length} thing(s) in the share instead of diagnostics, not read: ${planted.join(', ')}`,
        );
      }
    } catch (e) {
      io.deps.reporter.warning(`could not gather the guest's diagnostics: ${e instanceof Error ? e.message : String(e)}`);
      if (!GuestSession.existing(vm)) return;
    }
  }
  io.progress('powering the guest off');
  try {
    const code = await session.powerOff(kvm ? 60 : 180);
    io.progress(`QEMU exited with status ${code}`);
  } catch (e) {
    io.deps.reporter.warning(`the guest did not power off cleanly: ${e instanceof Error ? e.message : String(e)}`);
  }
}
