/**
 * Starting a test VM and watching its console until the login prompt, a recognised failure, QEMU's exit or the
 * deadline: the boot stage's first boot and the upgrade stage's second boot, diagnosed the same way.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StageIo } from '../deps.js';
import type { StageName } from '../results.js';
import { StageError } from '../errors.js';
import type { ConsoleEvent } from './console.js';
import { GuestVm } from './guest.js';
import type { QemuVmSpec } from './qemu.js';

export interface BootedVm {
  vm: GuestVm;
  /** Seconds from QEMU's start to the login prompt. */
  seconds: number;
  /** Boot milestones with their time since QEMU started. */
  milestones: { milestone: string; seconds: number }[];
}

/**
 * Boots `spec` and waits up to `timeoutSeconds` for the login prompt. On anything else the VM is stopped, a
 * screenshot of its VGA console goes to diagnostics/`screenshot`, and a StageError names what was seen: a
 * failure of the guest is a test failure, a cancel an infrastructure one. `onStopped` runs once QEMU is gone.
 */
export async function bootAndWatch(
  io: StageIo,
  stage: StageName,
  spec: QemuVmSpec,
  opts: {
    timeoutSeconds: number;
    onStopped: () => void;
    /** The run's diagnostics directory and the screenshot's name in it. */
    diagnosticsDir: string;
    screenshot: string;
    what: string;
  },
): Promise<BootedVm> {
  const { progress } = io;
  const timeout = opts.timeoutSeconds;
  const milestones: { milestone: string; seconds: number }[] = [];
  const onEvent = (e: ConsoleEvent, seconds: number): void => {
    if (e.type === 'milestone') {
      milestones.push({ milestone: e.milestone, seconds });
      progress(`${seconds}s ${e.milestone}: ${e.line.slice(0, 100)}`);
    }
  };
  progress(
    `QEMU ${spec.accel.toUpperCase()} ${spec.cpus} CPU ${spec.memoryMiB} MiB ${spec.firmware}; waiting up to ${timeout}s for the login prompt`,
  );
  let vm: GuestVm;
  try {
    vm = await GuestVm.start(io.deps, spec, io.log, onEvent, opts.onStopped);
  } catch (e) {
    opts.onStopped();
    throw new StageError(stage, `QEMU did not start: ${e instanceof Error ? e.message : String(e)}`);
  }
  const outcome = await vm.waitForBoot(timeout, io.signal);
  if (outcome.kind === 'login') {
    milestones.push({ milestone: 'login', seconds: outcome.seconds });
    progress(`${outcome.seconds}s login prompt: ${outcome.event.line}`);
    return { vm, seconds: outcome.seconds, milestones };
  }
  mkdirSync(opts.diagnosticsDir, { recursive: true });
  const shot = await vm.screenshot(join(opts.diagnosticsDir, opts.screenshot));
  const last = vm.watcher.tail(30);
  const earlier = vm.watcher.causes().filter((l) => !last.includes(l));
  // What failed first (it may have scrolled out of the tail), then the last console lines.
  const tail = earlier.length ? [...earlier, '…', ...last] : last;
  await vm.shutdown(`${opts.what} ${outcome.kind}`);
  const seen = milestones.map((m) => m.milestone).join(' → ') || 'nothing recognisable';
  const shotNote = shot ? ` A screenshot of the VGA console is in diagnostics/${opts.screenshot}.` : '';
  if (outcome.kind === 'failure') {
    throw new StageError(
      stage,
      `${opts.what} failed after ${outcome.seconds}s: ${outcome.event.description}. Console: "${outcome.event.line}".${shotNote}`,
      'test',
      tail,
    );
  }
  if (outcome.kind === 'exited') {
    throw new StageError(
      stage,
      `QEMU exited with status ${outcome.code} after ${outcome.seconds}s before a login prompt (seen: ${seen}).${shotNote}`,
      'test',
      tail,
    );
  }
  if (io.signal.aborted) throw new StageError(stage, `cancelled after ${outcome.seconds}s`, 'infrastructure', tail);
  throw new StageError(
    stage,
    `no login prompt within ${timeout}s (boot-timeout); last milestone: ${milestones.at(-1)?.milestone ?? 'none'} (seen: ${seen}).${shotNote}`,
    'test',
    tail,
  );
}
