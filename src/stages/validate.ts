import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Stage, StageContext } from '../context.js';
import type { ValidateResult } from '../results.js';
import { StageError } from '../errors.js';
import { resolveGoss } from '../goss/binary.js';
import { findRepositoryRoot } from '../lint/discover.js';
import { classifyGossRun, gossValidateArgv } from '../goss/command.js';
import { gossAnnotations, gossToJUnit, gossToMarkdown, gossToTap, type GossReport } from '../reports/goss.js';
import type { GuestVm } from '../vm/guest.js';
import { SHARE_TAG } from './boot.js';
import { shellQuote } from '../host/shell.js';

/** Where the share is mounted in the guest. */
export const GUEST_SHARE = '/run/debian-vm-ci';

/** Diagnostics gathered inside the guest: file name -> command (run by /bin/sh, output and errors kept). */
export const GUEST_DIAGNOSTICS: readonly [string, string][] = [
  ['os-release.txt', 'cat /etc/os-release'],
  ['uname.txt', 'uname -a'],
  ['dpkg-l.txt', 'dpkg -l'],
  ['systemctl-failed.txt', 'systemctl --failed --no-pager'],
  ['journal.txt', 'journalctl -b --no-pager'],
  ['lsblk.txt', 'lsblk -f || fdisk -l'],
  ['fdisk.txt', 'fdisk -l'],
  ['df.txt', 'df -h'],
  ['mounts.txt', 'cat /proc/mounts'],
  ['ip-addr.txt', 'ip addr'],
  ['cmdline.txt', 'cat /proc/cmdline'],
  [
    'systemd-analyze.txt',
    'command -v systemd-analyze >/dev/null && { systemd-analyze time; systemd-analyze blame --no-pager | head -30; }',
  ],
];

/** The script run in the guest: goss, then the diagnostics, all into the share. No input reaches it unquoted. */
export function guestScript(argv: readonly string[]): string {
  const lines = [
    '#!/bin/sh',
    '# Written by debian-vm-ci; runs inside the test VM.',
    `cd ${GUEST_SHARE} || exit 90`,
    'mkdir -p out/diagnostics',
    `${argv.map(shellQuote).join(' ')} > out/goss.stdout 2> out/goss.stderr`,
    'echo $? > out/goss.exit',
    ...GUEST_DIAGNOSTICS.map(([file, cmd]) => `{ ${cmd}; } > out/diagnostics/${file} 2>&1`),
    'sync',
    'exit 0',
  ];
  return lines.join('\n') + '\n';
}

/**
 * Where a console prompt ends: at the end of what the guest printed so far, or where a late kernel message starts
 * on the same line ("debian login: [   16.792899] powernow_k8: ..." was seen in a real run). The console watcher
 * accepts a login prompt the same way.
 */
const PROMPT_END = String.raw` ?(?:$|(?=\[ *\d+\.\d+\]))`;
/** getty's login prompt. */
export const LOGIN_PROMPT = new RegExp(String.raw`login:${PROMPT_END}`, 'm');
/** login's password prompt, or a new login prompt from a getty that restarted. */
export const PASSWORD_OR_LOGIN_PROMPT = new RegExp(String.raw`(Password|login):${PROMPT_END}`, 'm');
/** login's password prompt. */
export const PASSWORD_PROMPT = new RegExp(String.raw`Password:${PROMPT_END}`, 'm');
/** A root shell's prompt, or login's refusal. */
export const SHELL_PROMPT_OR_REFUSAL = new RegExp(String.raw`(Login incorrect|[#$]${PROMPT_END})`, 'm');

/** Logs in as root on the serial console and runs one command line; resolves with the marker's status. */
async function runOnConsole(ctx: StageContext, vm: GuestVm, command: string, timeoutSeconds: number): Promise<number> {
  const { config, signal, progress } = ctx;
  let pos = vm.consumed();
  vm.type('\n');
  // The prompt may already be on screen: a fresh one appears after the newline.
  let r = await vm.expect(LOGIN_PROMPT, pos, 60, signal, 'login prompt');
  pos = r.end;
  vm.type('root\n');
  // A getty that restarts in between shows a new login prompt instead: answer that one too.
  r = await vm.expect(PASSWORD_OR_LOGIN_PROMPT, pos, 90, signal, 'password prompt');
  pos = r.end;
  if (r.match[1] === 'login') {
    vm.type('root\n');
    r = await vm.expect(PASSWORD_PROMPT, pos, 90, signal, 'password prompt');
    pos = r.end;
  }
  vm.type(`${config.password}\n`);
  r = await vm.expect(SHELL_PROMPT_OR_REFUSAL, pos, 120, signal, 'root shell prompt after the password');
  if (r.match[1] === 'Login incorrect')
    throw new StageError('validate', 'logging in as root on the serial console failed: Login incorrect');
  pos = r.end;
  progress('logged in on the serial console');
  vm.type(`${command}; echo DVC-DONE:$?\n`);
  r = await vm.expect(/DVC-DONE:(\d+)/, pos, timeoutSeconds, signal, 'end of the validate script');
  return Number(r.match[1]);
}

export const validate: Stage<'validate'> = {
  name: 'validate',
  skipReason: (config) => (!config.install ? 'install: false' : config.validate ? undefined : 'validate: false'),
  async run(ctx) {
    const { config, deps, results, paths, progress } = ctx;
    const booted = results.boot;
    if (!booted) throw new StageError('validate', 'there is no booted VM to validate');
    const goss = await resolveGoss(config, deps);
    progress(`goss ${goss.version} (${goss.source}) from ${goss.path}`);
    const share = booted.shareDir;
    copyFileSync(goss.path, join(share, 'goss'));
    chmodSync(join(share, 'goss'), 0o755);
    copyFileSync(config.gossfile, join(share, 'goss.yaml'));
    if (config.gossVars) copyFileSync(config.gossVars, join(share, 'vars.yaml'));
    const argv = gossValidateArgv({
      goss: './goss',
      gossfile: './goss.yaml',
      vars: config.gossVars ? './vars.yaml' : undefined,
      retryTimeout: config.gossRetryTimeout,
    });
    writeFileSync(join(share, 'validate.sh'), guestScript(argv), { mode: 0o755 });
    const mount = `mkdir -p ${GUEST_SHARE} && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ${SHARE_TAG} ${GUEST_SHARE} && sh ${GUEST_SHARE}/validate.sh`;
    const t0 = performance.now();
    let status: number;
    try {
      status = await runOnConsole(ctx, booted.vm, mount, config.gossRetryTimeout + (results.accel?.accel === 'kvm' ? 300 : 900));
    } catch (e) {
      if (e instanceof StageError) throw e;
      throw new StageError(
        'validate',
        `running goss in the guest failed: ${e instanceof Error ? e.message : String(e)}`,
        'infrastructure',
        booted.vm.watcher.tail(20),
      );
    }
    progress(`goss and diagnostics ran in ${Math.round((performance.now() - t0) / 100) / 10}s`);
    const out = join(share, 'out');
    if (status !== 0 || !existsSync(join(out, 'goss.exit'))) {
      throw new StageError(
        'validate',
        `the guest could not run goss (status ${status}): is 9p (virtio) available in its kernel?`,
        'infrastructure',
        booted.vm.watcher.tail(20),
      );
    }
    // Everything is read before power-off: stopping the VM removes its scratch dir with the share.
    if (existsSync(join(out, 'diagnostics'))) cpSync(join(out, 'diagnostics'), paths.diagnostics, { recursive: true });
    const stdout = readFileSync(join(out, 'goss.stdout'), 'utf8');
    const stderr = readFileSync(join(out, 'goss.stderr'), 'utf8');
    const exitCode = Number(readFileSync(join(out, 'goss.exit'), 'utf8').trim());
    progress('powering the guest off');
    // We are logged in: ask systemd directly. Minimal images may have nothing that handles ACPI's power button.
    booted.vm.type('systemctl poweroff\n');
    const code = await booted.vm.shutdown('validated', {
      graceful: true,
      deadlineSeconds: results.accel?.accel === 'kvm' ? 60 : 180,
    });
    progress(`QEMU exited with status ${code}`);

    mkdirSync(paths.goss, { recursive: true });
    writeFileSync(join(paths.goss, 'goss.stdout.txt'), stdout);
    const run = classifyGossRun(exitCode, stdout, stderr);
    // Annotations name files relative to the repository root, where GitHub looks for them.
    const gossfileRel = relative(findRepositoryRoot(config.workingDirectory) ?? config.workingDirectory, config.gossfile);
    if (run.kind === 'load-error') {
      throw new StageError('validate', `goss could not load ${gossfileRel} (exit ${exitCode}): ${run.message}`, 'test');
    }
    if (run.kind === 'error') {
      throw new StageError(
        'validate',
        `goss failed to run (exit ${exitCode}): ${run.message}`,
        'infrastructure',
        stdout.split('\n').slice(-20),
      );
    }
    const report: GossReport = run.report;
    const finalJson =
      stdout
        .split(/\r?\n/)
        .filter((l) => /^\s*\{"results":/.test(l))
        .at(-1) ?? '{}';
    writeFileSync(join(paths.goss, 'goss.json'), JSON.stringify(JSON.parse(finalJson), null, 2) + '\n');
    writeFileSync(join(paths.goss, 'goss.junit.xml'), gossToJUnit(report, { suiteName: `goss ${config.release}` }));
    writeFileSync(join(paths.goss, 'goss.tap'), gossToTap(report));
    const markdown = gossToMarkdown(report);
    writeFileSync(join(paths.goss, 'goss.md'), markdown);
    const s = report.summary;
    const result: ValidateResult = {
      summary: `${s.passed}/${s.tests - s.skipped} goss tests passed${s.skipped ? `, ${s.skipped} skipped` : ''}${run.attempts > 1 ? ` after ${run.attempts} attempts` : ''}`,
      tests: s.tests,
      failures: s.failed,
      skipped: s.skipped,
      markdown,
      goss: { version: goss.version, source: goss.source },
      attempts: run.attempts,
    };
    progress(result.summary);
    if (run.kind === 'failed') {
      for (const a of gossAnnotations(report, gossfileRel)) deps.reporter.error(a.message, { title: a.title, file: a.file });
      throw new StageError(
        'validate',
        `${s.failed} of ${s.tests} goss tests failed${run.retryTimedOut ? ` (still failing after goss-retry-timeout ${config.gossRetryTimeout}s)` : ''}`,
        'test',
        report.tests
          .filter((t) => t.outcome === 'failed')
          .slice(0, 10)
          .map((t) => `${t.resourceType} ${t.resourceId} ${t.property}: expected ${t.expected}, found ${t.found}`),
        result,
      );
    }
    return result;
  },
};
