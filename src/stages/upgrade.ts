import { appendFileSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_BOOT_TIMEOUT } from '../config.js';
import { type Stage, underKvm } from '../context.js';
import { StageError, type FailureKind } from '../errors.js';
import { gossInGuest } from '../goss/in-guest.js';
import { scratchDir } from '../host/scratch.js';
import type { UpgradeResult, ValidateResult } from '../results.js';
import {
  allSteps,
  packageChanges,
  parsePackageList,
  UPGRADE_STEPS,
  upgradeToJUnit,
  upgradeToMarkdown,
  type UpgradeStep,
  type UpgradeStepName,
} from '../upgrade/report.js';
import { bootAndWatch, type BootedVm } from '../vm/boot-watch.js';
import { copyGuestFile } from '../vm/guest-file.js';
import { powerOffGuest, runGuestJob, tamperError } from '../vm/guest-job.js';
import { guestNetwork } from '../vm/guest-network.js';
import type { QemuVmSpec } from '../vm/qemu.js';
import { SHARE_TAG } from '../vm/session.js';

/** The script the guest runs (a file of its own, linted like any shell the action runs). */
export const RUN_IN_GUEST = readFileSync(new URL('../upgrade/upgrade-in-guest.sh', import.meta.url), 'utf8');

/** What each exit status of upgrade-in-guest.sh means, and whether the system under test is at fault. */
const SCRIPT_FAILURE: Record<number, { step: UpgradeStepName; why: string; kind: FailureKind }> = {
  101: { step: 'apt sources', why: 'no apt source of the guest names the release', kind: 'test' },
  100: { step: 'apt-get update', why: 'apt-get update in the guest failed', kind: 'infrastructure' },
  102: { step: 'apt-get full-upgrade', why: 'the upgrade failed in apt or a maintainer script', kind: 'test' },
  103: { step: 'dpkg --audit', why: 'dpkg --audit found packages left half installed', kind: 'test' },
  104: { step: 'kernel', why: 'the upgraded system has no kernel to boot', kind: 'test' },
};

/** A kernel or an initrd from the guest larger than this is refused. */
const MAX_BOOT_FILE = 512 * 1024 * 1024;

export const upgrade: Stage<'upgrade'> = {
  name: 'upgrade',
  usesGuest: true,
  skipReason: (config, results) =>
    !config.upgradeTo
      ? 'upgrade-to is empty'
      : !results.validate || results.validate.failures > 0
        ? `goss did not pass on ${config.release}: the upgrade starts from a system that passes`
        : undefined,
  async run(ctx) {
    const { config, results, paths, progress } = ctx;
    const booted = results.boot;
    const installed = results.install;
    if (!booted || !installed) throw new StageError('upgrade', 'there is no booted VM to upgrade');
    const from = config.release;
    const to = config.upgradeTo;
    const heading = `upgrade ${from} → ${to}`;
    const steps: UpgradeStep[] = [];
    const result: UpgradeResult = { summary: '', from, to, upgraded: 0, added: 0, removed: 0, kernel: '', aptSeconds: 0 };
    mkdirSync(paths.upgrade, { recursive: true });
    const writeJUnit = (): void =>
      writeFileSync(join(paths.upgrade, 'upgrade.junit.xml'), upgradeToJUnit(allSteps(steps), heading, result.aptSeconds));
    /** A failed step: reported with the steps before it, the rest skipped; the result so far goes on. */
    function fail(step: UpgradeStepName, why: string, kind: FailureKind, details: readonly string[] = [], body?: string): never {
      steps.push({ name: step, failure: why, body: body ?? details.join('\n') });
      result.summary = why;
      writeJUnit();
      result.markdown = [upgradeToMarkdown(allSteps(steps), heading), result.goss?.markdown].filter(Boolean).join('\n');
      writeFileSync(join(paths.upgrade, 'upgrade.md'), result.markdown);
      throw new StageError('upgrade', why, kind, details, result);
    }

    // 1. The upgrade in the running guest, apt through the run's proxy.
    progress(`upgrading the guest from ${from} to ${to}`);
    const direct = installed.boot.kind === 'direct' ? installed.boot : undefined;
    let job: Awaited<ReturnType<typeof runGuestJob>>;
    try {
      job = await runGuestJob(ctx, 'upgrade', config, results.boot, {
        script: { name: 'upgrade-run.sh', text: RUN_IN_GUEST },
        inputs: {},
        args: [from, to, direct ? 'direct' : 'disk'],
        timeoutSeconds: config.upgradeTimeout,
        what: 'the release upgrade',
        progressLine: aptProgress(),
      });
    } catch (e) {
      // The script never ended (upgrade-timeout, a guest that died): where it was is in logs/upgrade.log.
      if (e instanceof StageError) fail('apt-get full-upgrade', e.message, e.kind, e.details);
      throw e;
    }
    const { session, run } = job;
    result.aptSeconds = run.seconds;
    writeFileSync(join(paths.upgrade, 'output.txt'), run.stdout);
    const keep = (name: string, file: string): string => {
      const data = session.get(`upgrade-out.${name}`);
      if (data) writeFileSync(join(paths.upgrade, file), data);
      return data?.toString('utf8') ?? '';
    };
    keep('sources', 'sources.txt');
    const before = parsePackageList(keep('before', 'packages-before.tsv'));
    const after = parsePackageList(keep('after', 'packages-after.tsv'));
    const audit = keep('audit', 'dpkg-audit.txt');
    const scriptStep = (code: number): number => UPGRADE_STEPS.indexOf(SCRIPT_FAILURE[code]?.step ?? 'kernel');
    const kernelName = session.get('upgrade-out.kernel');
    // A link planted in place of a report (the package lists, dpkg --audit's) is the system's failure, said first.
    const planted = tamperError('upgrade', session.takeTampered());
    if (planted) fail('apt-get full-upgrade', planted.message, 'test', planted.details);
    if (run.exitCode !== 0) {
      const known = SCRIPT_FAILURE[run.exitCode];
      for (const name of UPGRADE_STEPS.slice(0, known ? scriptStep(run.exitCode) : 0)) steps.push({ name });
      // apt fails the same way when the mirror does: then it is not the system's fault.
      const kind = job.proxyTrouble ? 'infrastructure' : (known?.kind ?? 'infrastructure');
      const why = `${known?.why ?? `the upgrade script exited with status ${run.exitCode}`}${job.proxyTrouble ? ` (the apt proxy: ${job.proxyTrouble})` : ''}`;
      fail(
        known?.step ?? 'apt sources',
        why,
        kind,
        run.stdout.split(/\r?\n/).slice(-20),
        run.exitCode === 103 ? audit : undefined,
      );
    }
    for (const name of UPGRADE_STEPS.slice(0, scriptStep(104))) steps.push({ name });
    const changes = packageChanges(before, after);
    Object.assign(result, { upgraded: changes.upgraded.length, added: changes.added.length, removed: changes.removed.length });
    result.kernel = (kernelName?.toString('utf8').trim() ?? '').slice(0, 100);
    progress(
      `apt changed ${changes.upgraded.length} package versions, installed ${changes.added.length} new and removed ${changes.removed.length} in ${run.seconds}s; newest kernel ${result.kernel}`,
    );

    // 2. The second boot from the same disk: a VM of its own, watched like the first.
    const vmDir = scratchDir(ctx, 'vm');
    let released = false;
    const release = (): void => {
      if (!released) vmDir.release();
      released = true;
    };
    let second: BootedVm | undefined;
    try {
      const spec = secondSpec(booted.vm.spec, vmDir.path);
      // The first VM's directory goes when it stops; the overlay (and the UEFI variables) live on in this one.
      linkSync(booted.vm.spec.disk, spec.disk);
      if (booted.vm.spec.uefiVars && spec.uefiVars) linkSync(booted.vm.spec.uefiVars, spec.uefiVars);
      if (direct) {
        // The image has no boot loader: QEMU boots the upgraded kernel, taken from the guest's /boot.
        const kernel = join(vmDir.path, 'vmlinuz');
        const initrd = join(vmDir.path, 'initrd.img');
        try {
          copyGuestFile(join(booted.shareDir, 'upgrade-out.vmlinuz'), kernel, MAX_BOOT_FILE);
          copyGuestFile(join(booted.shareDir, 'upgrade-out.initrd'), initrd, MAX_BOOT_FILE);
        } catch (e) {
          fail(
            'kernel',
            `the upgraded kernel could not be taken from the guest: ${e instanceof Error ? e.message : String(e)}`,
            'test',
          );
        }
        spec.direct = { kernel, initrd, append: direct.append };
      }
      steps.push({ name: 'kernel', detail: result.kernel });
      progress('powering the guest off for the second boot');
      const code = await session.powerOff(underKvm(results) ? 60 : 180);
      progress(`QEMU exited with status ${code}`);
      if (ctx.signal.aborted) throw new StageError('upgrade', 'cancelled before the second boot', 'infrastructure', [], result);
      appendFileSync(paths.serialLog, `\n===== debian-vm-ci: second boot, after the upgrade from ${from} to ${to} =====\n`);
      try {
        second = await bootAndWatch(ctx, 'upgrade', spec, {
          timeoutSeconds: config.bootTimeout ?? DEFAULT_BOOT_TIMEOUT[spec.accel],
          onStopped: release,
          diagnosticsDir: paths.diagnostics,
          screenshot: 'screen-after-upgrade.png',
          what: `the second boot (after the upgrade to ${to})`,
        });
      } catch (e) {
        if (e instanceof StageError) fail('second boot', e.message, e.kind, e.details);
        throw e;
      }
      result.bootSeconds = second.seconds;
      steps.push({ name: 'second boot', detail: `login prompt after ${second.seconds}s` });

      // 3. goss on the upgraded system.
      let goss: ValidateResult;
      try {
        goss = await gossInGuest(ctx, 'upgrade', config, {
          vm: second.vm,
          kvm: underKvm(results),
          shareDir: spec.share?.path ?? '',
          gossfile: config.gossfileAfterUpgrade || config.gossfile,
          reportDir: join(paths.upgrade, 'goss'),
          diagnosticsDir: join(paths.upgrade, 'diagnostics'),
          suiteName: `goss ${to} (upgraded from ${from})`,
          heading: `goss after the upgrade to ${to}`,
        });
      } catch (e) {
        if (!(e instanceof StageError)) throw e;
        result.goss = e.partial as ValidateResult | undefined;
        fail('goss after the upgrade', e.message, e.kind, e.details);
      }
      result.goss = goss;
      steps.push({ name: 'goss after the upgrade', detail: goss.summary });
      result.summary = `${from} → ${to}: ${changes.upgraded.length} packages upgraded, ${changes.added.length} new, ${changes.removed.length} removed; second boot ${second.seconds}s; ${goss.summary}`;
      writeJUnit();
      result.markdown = `${upgradeToMarkdown(steps, heading, changes)}\n${goss.markdown}`;
      writeFileSync(join(paths.upgrade, 'upgrade.md'), result.markdown);
      await powerOffGuest(ctx, second.vm, underKvm(results));
      return result;
    } finally {
      // After a failure or a cancel: QEMU stopped, its scratch dir removed (shutdown is safe to repeat).
      if (second) await second.vm.shutdown('upgrade stage end');
      release();
    }
  },
};

/** Every 25th package dpkg sets up, as a progress line: a long full-upgrade can be followed in the job log. */
export function aptProgress(every = 25): (line: string) => string | undefined {
  let count = 0;
  return (line) => {
    const m = /^Setting up (\S+) \(([^)]*)\)/.exec(line);
    if (!m) return undefined;
    count += 1;
    return count % every === 0 ? `apt: ${count} packages set up (now ${m[1]} ${m[2]})` : undefined;
  };
}

/** The second VM: the first one's machine, its files in a directory of its own. */
function secondSpec(first: QemuVmSpec, dir: string): QemuVmSpec {
  mkdirSync(join(dir, 'share'));
  return {
    ...first,
    disk: join(dir, 'overlay.qcow2'),
    serialSocket: join(dir, 'serial.sock'),
    monitorSocket: join(dir, 'monitor.sock'),
    pidFile: join(dir, 'qemu.pid'),
    share: { path: join(dir, 'share'), tag: SHARE_TAG },
    network: guestNetwork(dir, first.network.restricted),
    uefiVars: first.uefiVars ? join(dir, 'efivars.fd') : undefined,
  };
}
