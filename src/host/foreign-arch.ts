/**
 * Running another architecture's programs on this host, as mmdebstrap's chroot does for an arm64 image (or package
 * build environment) on an amd64 runner: qemu-user through binfmt_misc. `arch-test` (the check mmdebstrap itself
 * relies on) says whether it works; when it does not, binfmt_misc is mounted and qemu-user-static's handler enabled,
 * then asked again. A host that cannot is an infrastructure error that says what is missing.
 */
import { existsSync } from 'node:fs';
import type { Deps } from '../deps.js';
import { ARCHITECTURE, hostArchitecture, type Architecture } from '../debian.js';
import { StageError } from '../errors.js';
import type { StageLog } from './exec.js';
import { ensureHostTools, findOnPath } from './packages.js';

const BINFMT = '/proc/sys/fs/binfmt_misc';

/** Whether `arch-test <arch>` says that this host runs its programs: "arm64: ok". */
export function archTestSaysOk(output: string, arch: Architecture): boolean {
  return new RegExp(`^${arch}: ok\\b`, 'm').test(output);
}

/**
 * Makes sure this host can run `arch`'s programs, for `why` ("the arm64 package build environment"). Returns how:
 * 'native', 'binfmt' (it already worked) or 'binfmt enabled' (this run mounted or enabled it).
 */
export async function ensureForeignArchitecture(
  deps: Deps,
  stage: string,
  arch: Architecture,
  why: string,
  log?: StageLog,
): Promise<'native' | 'binfmt' | 'binfmt enabled'> {
  const host = hostArchitecture();
  if (host === arch) return 'native';
  const qemu = ARCHITECTURE[arch].qemuUser;
  await ensureHostTools(deps, stage, `${why} (${arch} programs on this ${host ?? 'unknown'} host, through qemu-user)`, [
    { command: 'arch-test', package: 'arch-test' },
    { command: `qemu-${qemu}-static`, package: 'qemu-user-static' },
    // Debian registers qemu-user-static's handlers through binfmt-support; Ubuntu through systemd-binfmt.
    { command: 'update-binfmts', package: 'binfmt-support', optional: true },
  ]);
  const test = async (): Promise<string> => {
    const r = await deps.exec.run(['arch-test', arch], { stage, log, check: false });
    return `${r.stdout}${r.stderr}`.trim();
  };
  const first = await test();
  if (archTestSaysOk(first, arch)) return 'binfmt';
  deps.reporter.info(`${stage}: arch-test ${arch} says "${first}": enabling qemu-${qemu} in binfmt_misc`);
  const run = (argv: string[]): Promise<unknown> =>
    deps.exec.run(argv, { stage, log, privileged: true, check: false, timeoutSeconds: 120 });
  if (!existsSync(`${BINFMT}/status`)) await run(['mount', '-t', 'binfmt_misc', 'binfmt_misc', BINFMT]);
  if (findOnPath('update-binfmts', deps.env)) await run(['update-binfmts', '--enable', `qemu-${qemu}`]);
  else await run(['systemctl', 'restart', 'systemd-binfmt']);
  const second = await test();
  if (archTestSaysOk(second, arch)) return 'binfmt enabled';
  throw new StageError(
    stage,
    `${why} needs ${arch} programs to run on this ${host ?? 'unknown'} host through qemu-user and binfmt_misc, which does not work here (arch-test ${arch}: ${second || 'no answer'})`,
    'infrastructure',
  );
}
